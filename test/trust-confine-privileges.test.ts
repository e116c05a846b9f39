// Attack: an extension turns the host user's privileges on the host (limits, priority, pinning of another process;
// hostname, keyrings, kernel log, BPF, device nodes; capabilities). Control: with the sandbox disabled each probe
// works, on a sacrificial process this test spawns; under bwrap and Landlock each is refused and nothing changed.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, getPriority } from "node:os";
import { after, before, describe, it } from "node:test";
import type { Extension, SandboxOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import { fixture, makeManager } from "./helpers.js";

type Outcome = [string, unknown];
const MODULE = fixture("trust_confine_ext");
const ROOT = process.getuid?.() === 0;
const CPU_LIMIT = "123456"; // what the fixture's RLIMIT_CPU probe sets
const NICE = 7;
const ARCH_KNOWN = ["x64", "arm64"].includes(process.arch);

/** Probes aimed at the victim, and probes of the machine: the second kind works unconfined only as root here. */
const ON_VICTIM = ["set_cpu_limit", "renice", "pin"] as const;
const ON_MACHINE = ["set_hostname", "read_user_keyring", "read_kernel_log", "load_bpf", "mknod_device"] as const;
/** Unprivileged, these fail in the control too (no CAP_SYS_ADMIN, CAP_MKNOD; dmesg_restrict, unprivileged BPF off). */
const ROOT_ONLY = new Set(["set_hostname", "read_kernel_log", "load_bpf", "mknod_device"]);

const manager = makeManager();
let caps: SandboxCapabilities;
const victims: ChildProcess[] = [];

before(async () => {
  caps = await detectSandbox();
});
after(async () => {
  await manager.close();
  for (const v of victims) v.kill("SIGKILL");
});

/** A process of the same uid that the probes may harm: never the test runner. */
function spawnVictim(): number {
  const victim = spawn(process.execPath, ["-e", "setInterval(() => {}, 60000)"], { stdio: "ignore" });
  victims.push(victim);
  return victim.pid!;
}

function victimState(pid: number): { cpuLimit: string; nice: number; cpus: string } {
  const limits = readFileSync(`/proc/${pid}/limits`, "utf8").match(/^Max cpu time\s+(\S+)/m)![1]!;
  const cpus = readFileSync(`/proc/${pid}/status`, "utf8").match(/^Cpus_allowed_list:\s+(\S+)/m)![1]!;
  return { cpuLimit: limits, nice: getPriority(pid), cpus };
}

async function probeAll(sandbox: SandboxOptions): Promise<{
  outcomes: Record<string, Outcome>;
  before: ReturnType<typeof victimState>;
  after: ReturnType<typeof victimState>;
}> {
  const victim = spawnVictim();
  const before = victimState(victim);
  const ext: Extension = await manager.load({ name: "trust_confine_ext", modulePath: MODULE, sandbox });
  try {
    const outcomes: Record<string, Outcome> = {};
    for (const name of ON_VICTIM) outcomes[name] = (await ext.call(name, [victim])) as Outcome;
    for (const name of ON_MACHINE) outcomes[name] = (await ext.call(name)) as Outcome;
    outcomes.capabilities = (await ext.call("capabilities")) as Outcome;
    return { outcomes, before, after: victimState(victim) };
  } finally {
    await ext.stop();
  }
}

function table(outcomes: Record<string, Outcome>): string {
  return Object.entries(outcomes)
    .map(([name, [kind]]) => `${name}: ${kind}`)
    .join(", ");
}

describe("control: with the sandbox disabled the probes take effect", () => {
  it("sets RLIMIT_CPU on, renices and pins another process of the uid; as root also the machine's probes work", async (t) => {
    const { outcomes, before, after } = await probeAll({ mode: "disabled" });
    t.diagnostic(table(outcomes));
    for (const name of ON_VICTIM) assert.equal(outcomes[name]![0], "ok", `${name}: ${JSON.stringify(outcomes[name])}`);
    assert.equal(after.cpuLimit, CPU_LIMIT, "the victim's RLIMIT_CPU was set from inside the extension");
    assert.equal(after.nice, NICE);
    if (availableParallelism() > 1) assert.equal(after.cpus, "0", "the victim was pinned to CPU 0");
    assert.notEqual(before.cpuLimit, CPU_LIMIT);
    assert.equal(outcomes.read_user_keyring![0], "ok", "the uid's keyring is readable without a capability");
    for (const name of ON_MACHINE.filter((n) => ROOT_ONLY.has(n))) {
      if (ROOT) assert.equal(outcomes[name]![0], "ok", `${name}: ${JSON.stringify(outcomes[name])}`);
    }
    const [eff, prm] = outcomes.capabilities![1] as number[];
    if (ROOT) assert.ok(eff! > 0 && prm! > 0, "root's extension holds capabilities unsandboxed");
    if (!ROOT) t.diagnostic(`not root: ${[...ROOT_ONLY].join(", ")} need root to work at all and are not checked`);
  });
});

for (const backend of ["bwrap", "landlock"] as const) {
  describe(`sandboxed by ${backend}`, () => {
    it("refuses every probe with EPERM, leaves the victim untouched and holds no capability", async (t) => {
      if (!caps) caps = await detectSandbox();
      if (backend === "bwrap" && caps.backend !== "bwrap")
        return t.skip(`bwrap cannot run with every namespace here (model ${caps.model})`);
      if (backend === "landlock" && caps.landlockAbi < 6) return t.skip(`Landlock ABI ${caps.landlockAbi} < 6`);
      if (!ARCH_KNOWN) return t.skip(`the seccomp filter does not know ${process.arch}`);
      const { outcomes, before, after } = await probeAll({ mode: "required", backend });
      t.diagnostic(table(outcomes));
      for (const name of [...ON_VICTIM, ...ON_MACHINE]) {
        assert.equal(
          outcomes[name]![0],
          "PermissionError",
          `${name} got through ${backend}: ${JSON.stringify(outcomes[name])}`,
        );
      }
      assert.deepEqual(after, before, "the victim's limit, priority and CPUs are as they were");
      assert.deepEqual(outcomes.capabilities, ["ok", [0, 0, 0]], "no effective, permitted or inheritable capability");
    });
  });
}
