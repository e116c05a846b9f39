// Through manager.load: the install gets the load's network: false and the yaml's package sources are the extension's, not the host's.

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { detectSandbox } from "../src/sandbox/detect.js";
import { fixtureIndex, tempRoot } from "./fixtures/env/helpers.js";
import { startHttpIndex, type HttpIndex } from "./fixtures/env/trust-install-scene.js";
import { fixture, makeManager } from "./helpers.js";

const caps = await detectSandbox();
const skip = caps.backend === "none" ? `neither bwrap nor Landlock can run here (model ${caps.model})` : false;
const root = tempRoot("pyisolate-trust-load-");
const manager = makeManager({ venvRoot: path.join(root.dir, "venvs") });
let hostIndexUrl: string;
let otherWheels: string;
let httpIndex: HttpIndex;

/** A copy of the fixture extension with this pyisolate.yaml. */
function extension(name: string, yaml: string): string {
  const dir = path.join(root.dir, "extensions", name);
  mkdirSync(dir, { recursive: true });
  const src = fixture("trust_install_yaml");
  for (const f of readdirSync(src)) if (f.endsWith(".py")) copyFileSync(path.join(src, f), path.join(dir, f));
  writeFileSync(path.join(dir, "pyisolate.yaml"), yaml);
  return dir;
}

before(async () => {
  hostIndexUrl = fixtureIndex(path.join(root.dir, "host-index"), ["1.0"]).indexUrl;
  const two = fixtureIndex(path.join(root.dir, "two"), ["2.0"]).wheels;
  otherWheels = path.join(root.dir, "extensions", "other_ext", "wheels");
  mkdirSync(otherWheels, { recursive: true });
  for (const f of readdirSync(two)) copyFileSync(path.join(two, f), path.join(otherWheels, f));
  httpIndex = await startHttpIndex(two);
});
after(async () => {
  await manager.close();
  await httpIndex?.close();
  root.remove();
});

describe("manager.load: the install of an extension's dependencies", { skip }, () => {
  it("control: the host's code may name another extension's wheel folder, and the install reads it with no network", async () => {
    const modulePath = extension("load_host_links", "dependencies: [pyisolate-fixture-hello==2.0]\n");
    const messages: string[] = [];
    const ext = await manager.load({
      name: "load_host_links",
      modulePath,
      indexUrl: hostIndexUrl,
      findLinks: [otherWheels],
      onProgress: (e) => messages.push(e.message),
    });
    assert.equal(await ext.call("hello_version", []), "2.0");
    assert.ok(
      messages.some((m) => /install sandbox: .*no network \(every package source is local\)/.test(m)),
      messages.join("\n"),
    );
    await ext.stop();
  });

  it("refuses a yaml findLinks that names another extension's folder (ConfigError naming findLinks)", async () => {
    const modulePath = extension(
      "load_yaml_links",
      `dependencies: [pyisolate-fixture-hello==2.0]\nfindLinks: [${JSON.stringify(otherWheels)}]\n`,
    );
    await assert.rejects(manager.load({ name: "load_yaml_links", modulePath, indexUrl: hostIndexUrl }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /findLinks/);
      return true;
    });
  });

  it("a host-configured local HTTP index is reached through the proxy; the same URL from the yaml is refused", async () => {
    const hostNamed = extension("load_host_http", "dependencies: [pyisolate-fixture-hello==2.0]\n");
    const ext = await manager.load({ name: "load_host_http", modulePath: hostNamed, indexUrl: httpIndex.url });
    assert.equal(await ext.call("hello_version", []), "2.0");
    await ext.stop();
    const before = httpIndex.requests();
    const yamlNamed = extension(
      "load_yaml_http",
      `dependencies: [pyisolate-fixture-hello==2.0]\nindexUrl: ${JSON.stringify(httpIndex.url)}\n`,
    );
    await assert.rejects(manager.load({ name: "load_yaml_http", modulePath: yamlNamed }), (e: Error) => {
      // The config layer may refuse a loopback URL in the yaml first; else the proxy refuses it and the install fails.
      assert.ok(e.name === "EnvironmentBuildError" || e.name === "ConfigError", `${e.name}: ${e.message}`);
      return true;
    });
    assert.equal(httpIndex.requests(), before, "the yaml's index on the host's loopback never saw a request");
  });
});
