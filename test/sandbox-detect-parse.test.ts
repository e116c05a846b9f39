// Detection parsing: one recorded input set per restriction model, each giving the model and a remedy with commands.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  classifyBwrapStderr,
  decideModel,
  detectContainer,
  hasCapSysAdmin,
  parseBwrapVersion,
  parseHostFiles,
  parseLandlockProbe,
  statusField,
  type ProbeSummary,
} from "../src/sandbox/detect-parse.js";
import type { HostFiles } from "../src/sandbox/host-files.js";
import { modelGap } from "../src/sandbox/remedies.js";
import { RESTRICTION_MODELS, type RestrictionModel } from "../src/sandbox/types.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "sandbox");

interface Case {
  description: string;
  files: HostFiles;
  probe: ProbeSummary;
  expected: { model: RestrictionModel; remedyIncludes: string[] };
}

const cases = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .map((f) => ({
    name: f.replace(/\.json$/, ""),
    ...(JSON.parse(readFileSync(path.join(FIXTURES, f), "utf8")) as Case),
  }));

describe("restriction model from recorded inputs", () => {
  for (const c of cases) {
    it(`${c.name}: ${c.description}`, () => {
      const facts = parseHostFiles(c.files);
      const model = decideModel(facts, c.files.platform, c.probe);
      assert.equal(model, c.expected.model);
      const gap = modelGap(model, facts, c.probe.fullStderr);
      if (model === "none") {
        assert.equal(gap, undefined);
        return;
      }
      assert.ok(gap, `a gap for ${model}`);
      assert.ok(gap.remedy.length > 0, "a remedy with at least one line");
      const text = `${gap.problem}\n${gap.remedy.join("\n")}`;
      for (const needle of c.expected.remedyIncludes)
        assert.ok(text.includes(needle), `remedy for ${c.name} names "${needle}":\n${text}`);
    });
  }

  it("every model has a recorded case", () => {
    const covered = new Set(cases.map((c) => c.expected.model));
    for (const model of RESTRICTION_MODELS) assert.ok(covered.has(model), `no fixture for ${model}`);
  });
});

describe("kernel file parsers", () => {
  it("reads CapEff bit 21 and the seccomp mode from /proc/self/status", () => {
    const status = "Name:\tx\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n";
    assert.equal(hasCapSysAdmin(status), false);
    assert.equal(hasCapSysAdmin("CapEff:\t000001fffeffffff\n"), true);
    assert.equal(hasCapSysAdmin("CapEff:\t0000000000200000\n"), true);
    assert.equal(hasCapSysAdmin(undefined), undefined);
    assert.equal(hasCapSysAdmin("CapEff:\tnot-hex\n"), undefined);
    assert.equal(statusField(status, "Seccomp"), "2");
    assert.equal(parseHostFiles({ ...base(), procSelfStatus: status }).seccompMode, 2);
  });

  it("finds containers by marker files, the container variable and /proc/1/cgroup", () => {
    assert.equal(detectContainer(base()), undefined);
    assert.equal(detectContainer({ ...base(), dockerenv: true }), "docker");
    assert.equal(detectContainer({ ...base(), containerenv: true }), "podman");
    assert.equal(detectContainer({ ...base(), containerVar: "systemd-nspawn" }), "systemd-nspawn");
    assert.equal(detectContainer({ ...base(), proc1Cgroup: "12:pids:/kubepods/besteffort/pod1/abc\n" }), "kubernetes");
    assert.equal(detectContainer({ ...base(), proc1Cgroup: "1:name=systemd:/docker/0123abcd\n" }), "docker");
    assert.equal(detectContainer({ ...base(), proc1Cgroup: "0::/system.slice/containerd.service\n" }), "containerd");
    assert.equal(detectContainer({ ...base(), proc1Cgroup: "0::/lxc/c1\n" }), "lxc");
  });

  it("reads the sysctls, the LSM list and SELinux's mode", () => {
    const facts = parseHostFiles({
      ...base(),
      maxUserNamespaces: "0\n",
      unprivilegedUsernsClone: "1\n",
      apparmorRestrictUserns: "1\n",
      lsm: "capability,selinux\n",
      selinuxEnforce: "1",
    });
    assert.equal(facts.maxUserNamespaces, 0);
    assert.equal(facts.unprivilegedUsernsClone, 1);
    assert.equal(facts.apparmorRestrictsUserns, true);
    assert.deepEqual(facts.lsms, ["capability", "selinux"]);
    assert.equal(facts.selinuxEnforcing, true);
    const absent = parseHostFiles(base());
    assert.equal(absent.maxUserNamespaces, undefined);
    assert.equal(absent.apparmorRestrictsUserns, false);
    assert.deepEqual(absent.lsms, []);
  });

  it("classifies bwrap's stderr", () => {
    assert.equal(classifyBwrapStderr("bwrap: setting up uid map: Permission denied"), "uid-map");
    assert.equal(classifyBwrapStderr("bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted"), "loopback");
    assert.equal(classifyBwrapStderr("bwrap: Creating new namespace failed: No space left on device"), "userns-limit");
    assert.equal(
      classifyBwrapStderr(
        "bwrap: Creating new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces exceeded (ENOSPC)",
      ),
      "userns-limit",
    );
    assert.equal(
      classifyBwrapStderr("bwrap: No permissions to creating new namespace, likely because ..."),
      "userns-disabled",
    );
    assert.equal(
      classifyBwrapStderr("bwrap: Can't mount proc on /newroot/proc: Operation not permitted"),
      "proc-mount",
    );
    assert.equal(classifyBwrapStderr("bwrap: Creating new namespace failed: Operation not permitted"), "eperm");
    assert.equal(classifyBwrapStderr("bwrap: something odd"), "other");
  });

  it("reads bwrap's version and the Landlock probe's answer", () => {
    assert.equal(parseBwrapVersion("bubblewrap 0.8.0\n"), "0.8.0");
    assert.equal(parseBwrapVersion(""), undefined);
    assert.equal(parseLandlockProbe("7\n"), 7);
    assert.equal(parseLandlockProbe("-38\n"), 0);
    assert.equal(parseLandlockProbe("-95\n"), 0);
    assert.equal(parseLandlockProbe("garbage"), 0);
  });
});

function base(): HostFiles {
  return { platform: "linux", userNsFile: true, grsecurity: false, dockerenv: false, containerenv: false };
}
