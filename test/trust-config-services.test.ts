// Host services per extension (issue 7, item 9): load({ services }) grants, pyisolate.yaml narrows, callers are named.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { callingExtension, ConfigError, type ExtensionManager } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { makeManager } from "./helpers.js";
import { copyFixture, SANDBOX_CASES, scratch, unavailable } from "./trust-config-helpers.js";

type Answer = [string, string];

const root = scratch("trust-config-services-");
const MODULE = copyFixture("trust_config_services", root.dir);
let caps: SandboxCapabilities;
let manager: ExtensionManager;

/** Each service answers with its own name and the caller it sees, read after an await (the async continuation). */
function service(name: string): object {
  return {
    async who() {
      const before = callingExtension();
      await new Promise((resolve) => setTimeout(resolve, 5));
      return `${name} for ${callingExtension()} (${before})`;
    },
  };
}

before(async () => {
  caps = await detectSandbox();
  manager = makeManager();
  manager.provide("Svc1", service("Svc1"));
  manager.provide("Svc2", service("Svc2"));
});
after(async () => {
  await manager.close();
  root.remove();
});

for (const c of SANDBOX_CASES) {
  describe(`services granted per extension (${c.label})`, () => {
    it("A granted only Svc1 gets the unknown-service LookupError for Svc2; B granted both reaches both; each is named", async (t) => {
      const why = unavailable(c, caps);
      if (why) return t.skip(why);
      const a = await manager.load({
        name: `svc-a-${c.label}`,
        modulePath: MODULE,
        sandbox: c.sandbox,
        services: ["Svc1"],
      });
      const b = await manager.load({
        name: `svc-b-${c.label}`,
        modulePath: MODULE,
        sandbox: c.sandbox,
        services: ["Svc1", "Svc2"],
      });
      try {
        assert.deepEqual(await a.call("ask", ["Svc1"]), ["ok", `Svc1 for svc-a-${c.label} (svc-a-${c.label})`]);
        const refused = (await a.call("ask", ["Svc2"])) as Answer;
        const unknown = (await a.call("ask", ["Missing"])) as Answer;
        assert.equal(refused[0], "LookupError", JSON.stringify(refused));
        // The same answer as for a service that was never provided: nothing tells A that Svc2 exists.
        assert.deepEqual(
          [refused[0], refused[1].replace("Svc2", "<name>")],
          [unknown[0], unknown[1].replace("Missing", "<name>")],
        );
        // The control: B reaches both, and Svc2 is really there.
        assert.deepEqual(await b.call("ask", ["Svc2"]), ["ok", `Svc2 for svc-b-${c.label} (svc-b-${c.label})`]);
        assert.deepEqual(await b.call("ask", ["Svc1"]), ["ok", `Svc1 for svc-b-${c.label} (svc-b-${c.label})`]);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });
  });
}

describe("the default and the config file", () => {
  it("without services every provided service is callable (the documented default)", async () => {
    const ext = await manager.load({ name: "svc-default", modulePath: MODULE, sandbox: { mode: "disabled" } });
    try {
      assert.deepEqual(await ext.call("ask", ["Svc2"]), ["ok", "Svc2 for svc-default (svc-default)"]);
    } finally {
      await ext.stop();
    }
  });

  it("pyisolate.yaml may narrow the grant but never widen the code's", async () => {
    const dir = copyFixture("trust_config_services", root.dir, "services_yaml");
    writeFileSync(path.join(dir, "pyisolate.yaml"), "services: [Svc1]\n");
    const narrowed = await manager.load({ name: "svc-yaml", modulePath: dir, sandbox: { mode: "disabled" } });
    const widened = await manager.load({
      name: "svc-yaml-wide",
      modulePath: dir,
      sandbox: { mode: "disabled" },
      services: ["Svc2"],
    });
    try {
      assert.deepEqual(await narrowed.call("ask", ["Svc1"]), ["ok", "Svc1 for svc-yaml (svc-yaml)"]);
      assert.equal(((await narrowed.call("ask", ["Svc2"])) as Answer)[0], "LookupError");
      // Code grants Svc2 only, the file names Svc1 only: the extension gets what both allow, which is nothing.
      assert.equal(((await widened.call("ask", ["Svc1"])) as Answer)[0], "LookupError");
      assert.equal(((await widened.call("ask", ["Svc2"])) as Answer)[0], "LookupError");
    } finally {
      await Promise.all([narrowed.stop(), widened.stop()]);
    }
  });

  it("a malformed services list is a ConfigError naming the key (and the file when it came from there)", async () => {
    const dir = copyFixture("trust_config_services", root.dir, "services_bad");
    const file = path.join(dir, "pyisolate.yaml");
    writeFileSync(file, "services: ['no spaces allowed']\n");
    await assert.rejects(
      manager.load({ name: "svc-bad", modulePath: dir }),
      (e: unknown) => e instanceof ConfigError && e.key === "services" && e.file === file,
    );
    await assert.rejects(
      manager.load({ name: "svc-bad", modulePath: MODULE, services: "Svc1" as never }),
      (e: unknown) => e instanceof ConfigError && e.key === "services",
    );
  });

  it("callingExtension() is undefined outside a call from an extension", () => {
    assert.equal(callingExtension(), undefined);
  });
});
