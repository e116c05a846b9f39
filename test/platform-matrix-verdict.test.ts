// The container matrix's verdict (scripts/container-matrix-configs.mjs): each recorded row meets what its
// configuration must give, and a row that regresses fails with a reason that names the configuration's difference.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";

interface Config {
  name: string;
  engine: string;
  options: string[];
  expect: { backend: string; layers: string[] };
}
interface Result {
  name: string;
  dockerRc?: number;
  dockerErr?: string;
  probe: Record<string, unknown>;
  demo: { rc: number; tail: string[] };
  why?: string[];
  flaky?: string[];
}
interface MatrixModule {
  CONFIGS: Config[];
  commandLine(config: Config): string;
  failures(config: Config, result: Result): string[];
  matrixRow(result: Result & { why: string[] }): Record<string, string>;
}

// A plain JavaScript module (CI runs it before any build), loaded by URL so the type check does not need its types.
const matrix = (await import(new URL("../scripts/container-matrix-configs.mjs", import.meta.url).href)) as MatrixModule;
const fixture = (name: string) => new URL(`fixtures/platform/${name}.json`, import.meta.url);

/** A result as the matrix builds it, from a configuration's recording (evidence, detection, what the load did). */
function recordedResult(name: string): Result {
  const r = JSON.parse(readFileSync(fixture(name), "utf8")) as {
    detected: unknown;
    observed: { attack: unknown; tensors: unknown; demoRc: number };
  };
  return {
    name,
    dockerRc: 0,
    probe: { detected: r.detected, attack: r.observed.attack, tensors: r.observed.tensors },
    demo: { rc: r.observed.demoRc, tail: [] },
  };
}

const config = (name: string) => matrix.CONFIGS.find((c) => c.name === name)!;

describe("the container matrix's verdict", () => {
  for (const c of matrix.CONFIGS) {
    it(`${c.name} (${matrix.commandLine(c)}): its recording gives ${c.expect.backend} and passes`, () => {
      assert.ok(existsSync(fixture(c.name)), `test/fixtures/platform/${c.name}.json is recorded`);
      assert.deepEqual(matrix.failures(c, recordedResult(c.name)), []);
    });
  }

  it("a row whose load takes another backend than expected fails, naming both", () => {
    const r = recordedResult("seccomp-systempaths-unconfined");
    const probe = r.probe as { attack: { backend: string }; detected: { backend: string } };
    probe.attack.backend = "landlock";
    probe.detected.backend = "landlock";
    assert.deepEqual(matrix.failures(config("seccomp-systempaths-unconfined"), r), [
      "the load used landlock, expected bwrap",
    ]);
  });

  it("a row where doctor disagrees with the load, or names other layers, fails with both reasons", () => {
    const r = recordedResult("default");
    const probe = r.probe as { detected: { backend: string; container: { blockers: { layer: string }[] } } };
    probe.detected.backend = "bwrap-degraded";
    probe.detected.container.blockers = probe.detected.container.blockers.filter((b) => b.layer !== "seccomp");
    assert.deepEqual(matrix.failures(config("default"), r), [
      "doctor says bwrap-degraded, the load used landlock",
      "doctor names layers [masked-proc], expected [seccomp, masked-proc]",
    ]);
  });

  it("an attack that gets through, a copied tensor and a failed demo each fail the row with their own reason", () => {
    const r = recordedResult("user-1000");
    const probe = r.probe as { attack: { blocked: number; through: string[] }; tensors: { shared: boolean } };
    probe.attack.blocked -= 1;
    probe.attack.through = ["read_home_secret"];
    probe.tensors.shared = false;
    r.demo = { rc: 1, tail: ["unexpected numpy versions"] };
    const why = matrix.failures(config("user-1000"), r);
    assert.equal(why.length, 3, why.join("\n"));
    assert.match(why[0]!, /^attacks blocked 18\/19, through: read_home_secret$/);
    assert.match(why[1]!, /^the 1 GiB tensor was not shared/);
    assert.equal(why[2], "the demo failed (rc 1): unexpected numpy versions");
  });

  it("a container that does not start fails with the engine's own words, and nothing else", () => {
    const r: Result = {
      name: "default",
      dockerRc: 125,
      dockerErr: "docker: Error response from daemon: unable to apply caps",
      probe: {},
      demo: { rc: -1, tail: [] },
    };
    assert.deepEqual(matrix.failures(config("default"), r), [
      "the container did not start: docker: Error response from daemon: unable to apply caps",
    ]);
  });

  it("a row that passed on its second try says so in its verdict", () => {
    const r = recordedResult("network-none");
    assert.equal(
      matrix.matrixRow({ ...r, why: [], flaky: ["the probe printed no result"] }).verdict,
      "pass (on the second try)",
    );
    assert.equal(matrix.matrixRow({ ...r, why: ["x"] }).verdict, "FAIL");
  });
});
