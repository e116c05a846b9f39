// What an extension's yaml may name as package sources: folders inside its own folder and URLs that reach only public addresses.

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { ensureEnvironment, resolvePython, type EnvironmentSpec } from "../src/env/builder.js";
import { LANDLOCK_NET_ABI } from "../src/sandbox/choose.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { fixtureIndex, HELLO, py, recorder, tempRoot } from "./fixtures/env/helpers.js";
import { startHttpIndex, type HttpIndex } from "./fixtures/env/trust-install-scene.js";

const caps = await detectSandbox();
const bwrapSkip =
  caps.bwrap !== undefined && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded")
    ? false
    : `bwrap cannot run here (model ${caps.model})`;
const landlockSkip =
  caps.landlockAbi >= LANDLOCK_NET_ABI
    ? false
    : `Landlock ABI ${caps.landlockAbi} cannot confine TCP (needs ${LANDLOCK_NET_ABI})`;
const root = tempRoot("pyisolate-trust-sources-");
let extensionDir: string;
let otherWheels: string;
let homeWheels: string;
let hostIndexUrl: string;
let httpIndex: HttpIndex;
let base: Omit<EnvironmentSpec, "name" | "sandbox">;

/** Copy the hello 2.0 wheel into `dir` (a find-links folder). */
function wheelInto(from: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(from)) copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

before(async () => {
  // The host's code names an index with hello 1.0 only: 2.0 can come only from the source under test.
  hostIndexUrl = fixtureIndex(path.join(root.dir, "host-index"), ["1.0"]).indexUrl;
  const two = fixtureIndex(path.join(root.dir, "two"), ["2.0"]).wheels;
  extensionDir = path.join(root.dir, "extensions", "my_ext");
  wheelInto(two, path.join(extensionDir, "wheels"));
  otherWheels = wheelInto(two, path.join(root.dir, "extensions", "other_ext", "wheels"));
  homeWheels = wheelInto(two, mkdtempSync(path.join(homedir(), ".pyisolate-trust-wheels-")));
  httpIndex = await startHttpIndex(two);
  const python = await resolvePython(undefined);
  base = {
    venvRoot: path.join(root.dir, "venvs"),
    python: python.path,
    dependencies: ["pyisolate-fixture-hello==2.0"],
    installer: "pip",
    runtimeVersion: "0.1.0-test",
  };
});
after(async () => {
  await httpIndex?.close();
  rmSync(homeWheels, { recursive: true, force: true });
  root.remove();
});

type Backend = "bwrap" | "landlock" | undefined;

/** An install as a load runs it: network false; the host's code gave `trusted`; the yaml added the rest of `index`. */
function spec(
  name: string,
  backend: Backend,
  index: Partial<EnvironmentSpec>,
  trusted: Partial<EnvironmentSpec>,
  mode: "required" | "disabled" = "required",
): EnvironmentSpec {
  const t = {
    indexUrl: trusted.indexUrl ?? null,
    extraIndexUrls: trusted.extraIndexUrls ?? [],
    findLinks: trusted.findLinks ?? [],
  };
  return {
    ...base,
    name,
    ...index,
    sandbox: { mode, ...(backend ? { backend } : {}), network: false, extensionDir, trustedIndex: t },
  };
}

describe("package sources an extension's yaml names", () => {
  it(
    "control: the host's code may name another extension's wheel folder, and the install reads it",
    { skip: bwrapSkip },
    async () => {
      const rec = recorder();
      const e = await ensureEnvironment({
        ...spec(
          "src-host-other",
          "bwrap",
          { indexUrl: hostIndexUrl, findLinks: [otherWheels] },
          { indexUrl: hostIndexUrl, findLinks: [otherWheels] },
        ),
        onProgress: rec.onProgress,
      });
      assert.equal(py(e.pythonPath, HELLO), "2.0");
      assert.ok(
        rec.events.some((ev) => /no network \(every package source is local\)/.test(ev.message)),
        "an all-local install gets no network at all",
      );
    },
  );

  for (const [what, source] of [
    ["another extension's folder", () => otherWheels],
    ["a folder in the host's home", () => homeWheels],
    ["another extension's folder as a file:// URL", () => pathToFileURL(otherWheels).href],
    [
      "a symlink in its own folder that leads to another extension's",
      () => {
        const link = path.join(extensionDir, `link-${Math.random().toString(36).slice(2)}`);
        symlinkSync(otherWheels, link);
        return link;
      },
    ],
  ] as const) {
    it(`refuses ${what} with a ConfigError naming findLinks, before anything is installed`, async () => {
      const rec = recorder();
      const s = spec(
        `src-bad-${what.length}`,
        undefined,
        { indexUrl: hostIndexUrl, findLinks: [source()] },
        { indexUrl: hostIndexUrl },
      );
      await assert.rejects(ensureEnvironment({ ...s, onProgress: rec.onProgress }), (e: Error & { key?: string }) => {
        assert.equal(e.name, "ConfigError");
        assert.equal(e.key, "findLinks");
        assert.match(e.message, /outside the extension's folder|refusing/);
        return true;
      });
      assert.ok(
        !rec.events.some((ev) => ev.stage === "install" && /install sandbox:/.test(ev.message)),
        "no install ran",
      );
    });
  }

  it("refuses another extension's folder even with the install sandbox disabled", async () => {
    const s = spec(
      "src-bad-disabled",
      undefined,
      { indexUrl: hostIndexUrl, findLinks: [otherWheels] },
      { indexUrl: hostIndexUrl },
      "disabled",
    );
    await assert.rejects(ensureEnvironment(s), { name: "ConfigError", key: "findLinks" });
  });

  for (const backend of ["bwrap", "landlock"] as const) {
    const skip = backend === "bwrap" ? bwrapSkip : landlockSkip;
    it(
      `under ${backend}: a wheel folder inside the extension's own folder is bound and installs, with no network`,
      { skip },
      async () => {
        const rec = recorder();
        const e = await ensureEnvironment({
          ...spec(
            `src-own-${backend}`,
            backend,
            { indexUrl: hostIndexUrl, findLinks: [path.join(extensionDir, "wheels")] },
            { indexUrl: hostIndexUrl },
          ),
          onProgress: rec.onProgress,
        });
        assert.equal(py(e.pythonPath, HELLO), "2.0");
        assert.ok(
          rec.events.some((ev) => /no network \(every package source is local\)/.test(ev.message)),
          rec.events.map((ev) => ev.message).join("\n"),
        );
      },
    );

    it(
      `under ${backend}: an index URL the yaml names on the host's loopback is refused by the proxy (EnvironmentBuildError), one the host names installs`,
      { skip },
      async () => {
        const before = httpIndex.requests();
        const rec = recorder();
        await assert.rejects(
          ensureEnvironment({
            ...spec(`src-url-ext-${backend}`, backend, { indexUrl: httpIndex.url }, {}),
            onProgress: rec.onProgress,
          }),
          { name: "EnvironmentBuildError" },
        );
        assert.equal(httpIndex.requests(), before, "the yaml's loopback index never saw a request");
        assert.ok(
          rec.events.some(
            (ev) =>
              ev.warning && /install proxy: refused .*127\.0\.0\.1.*loopback, private or reserved/.test(ev.message),
          ),
          rec.events.map((ev) => ev.message).join("\n"),
        );
        // Control: the same URL from the host's code is a trusted local index, reached through the proxy.
        const e = await ensureEnvironment(
          spec(`src-url-host-${backend}`, backend, { indexUrl: httpIndex.url }, { indexUrl: httpIndex.url }),
        );
        assert.equal(py(e.pythonPath, HELLO), "2.0");
        assert.ok(httpIndex.hits() > 0);
      },
    );
  }
});
