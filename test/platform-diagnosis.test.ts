// Detection's diagnosis on evidence recorded in real containers (scripts/container-matrix --record) and on this VM:
// the layer it names, the remedy it gives, and the backend it reports, which must be the one load() really used.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { defaultLoadBackend } from "../src/sandbox/detect.js";
import { diagnoseContainer } from "../src/sandbox/detect-container.js";
import type { ContainerLayer } from "../src/sandbox/types.js";
import { containerGap } from "../src/sandbox/detect-container-remedy.js";
import { classifyMachine } from "../src/sandbox/detect-machine.js";
import { decideModel, parseHostFiles } from "../src/sandbox/detect-parse.js";
import type { HostFiles } from "../src/sandbox/host-files.js";
import type {
  NamespaceSupport,
  ProbeRecord,
  RestrictionModel,
  SandboxBackend,
  SandboxCapabilities,
} from "../src/sandbox/types.js";

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "platform");

interface Recorded {
  description: string;
  evidence: HostFiles;
  detected: { backend: SandboxBackend; namespaces: NamespaceSupport; landlockAbi: number; probes: ProbeRecord[] };
  observed: { loadBackend: SandboxBackend | null };
}

/** The remedies measured to make bwrap work (scripts/container-matrix, docs/platforms.md). */
const DOCKER_FIX = "docker run --security-opt seccomp=unconfined --security-opt systempaths=unconfined";
const PODMAN_FIX = "# Podman: podman run --security-opt seccomp=unconfined --security-opt unmask=ALL ...";

/** What each recorded configuration must be diagnosed as: written from the run options, not from the output. */
const EXPECTED: Record<
  string,
  { kind: string; model: RestrictionModel; layers: ContainerLayer[]; hit?: ContainerLayer; runtime?: string }
> = {
  default: { kind: "container", model: "container", layers: ["seccomp", "masked-proc"], hit: "seccomp" },
  // SYS_ADMIN lets Docker's profile pass unshare, but it has no rule for pivot_root: seccomp still stops bwrap first.
  "cap-sys-admin": { kind: "container", model: "container", layers: ["seccomp", "masked-proc"], hit: "seccomp" },
  "seccomp-unconfined": { kind: "container", model: "container", layers: ["masked-proc"], hit: "masked-proc" },
  "sys-admin-seccomp-unconfined": {
    kind: "container",
    model: "container",
    layers: ["masked-proc"],
    hit: "masked-proc",
  },
  "seccomp-systempaths-unconfined": { kind: "container", model: "none", layers: [] },
  "read-only-root": { kind: "container", model: "container", layers: ["seccomp", "masked-proc"], hit: "seccomp" },
  "user-1000": { kind: "container", model: "container", layers: ["seccomp", "masked-proc"], hit: "seccomp" },
  "user-1000-unconfined": { kind: "container", model: "none", layers: [] },
  "network-none": { kind: "container", model: "container", layers: ["seccomp", "masked-proc"], hit: "seccomp" },
  "vm-dockerenv": { kind: "vm", model: "none", layers: [] },
  // podman's seccomp profile lets unshare through but refuses sethostname, which bwrap's --hostname needs.
  "podman-default": {
    kind: "container",
    model: "container",
    layers: ["seccomp", "masked-proc"],
    hit: "seccomp",
    runtime: "podman",
  },
  "podman-unmask": { kind: "container", model: "container", layers: ["seccomp"], hit: "seccomp", runtime: "podman" },
  "podman-seccomp-unmask": { kind: "container", model: "none", layers: [], runtime: "podman" },
  "podman-rootless": {
    kind: "container",
    model: "container",
    layers: ["seccomp", "masked-proc"],
    hit: "seccomp",
    runtime: "podman",
  },
  "podman-rootless-seccomp-unmask": { kind: "container", model: "none", layers: [], runtime: "podman" },
};

const recorded = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .map((f) => ({
    name: f.replace(/\.json$/, ""),
    ...(JSON.parse(readFileSync(path.join(DIR, f), "utf8")) as Recorded),
  }));

/** Detection's result rebuilt from the recording: the probes' outcome and what the first launch said. */
function rebuild(r: Recorded) {
  const facts = parseHostFiles(r.evidence);
  const full = r.detected.probes[0];
  const fullOk = full?.ok ?? false;
  const model = decideModel(facts, r.evidence.platform, {
    bwrapFound: full !== undefined,
    fullOk,
    fullStderr: full?.stderr ?? "",
  });
  const diagnosis = diagnoseContainer(r.evidence, facts, fullOk, full?.stderr ?? "");
  const someNamespace = Object.values(r.detected.namespaces).some(Boolean);
  const caps: SandboxCapabilities = {
    platform: r.evidence.platform,
    model,
    bwrap: full ? { path: full.argv[0]!, version: undefined } : undefined,
    backend: fullOk ? "bwrap" : someNamespace ? "bwrap-degraded" : r.detected.landlockAbi > 0 ? "landlock" : "none",
    namespaces: r.detected.namespaces,
    landlockAbi: r.detected.landlockAbi,
    inContainer: facts.container !== undefined,
    probes: r.detected.probes,
    gaps: [],
  };
  return { model, diagnosis, caps, gap: containerGap(diagnosis, r.detected.landlockAbi) };
}

describe("diagnosis on evidence recorded in real containers", () => {
  it("every configuration of the matrix has a recording and an expectation", () => {
    const names = recorded.map((r) => r.name).sort();
    assert.deepEqual(names, Object.keys(EXPECTED).sort());
  });

  for (const r of recorded) {
    const want = EXPECTED[r.name];
    if (!want) continue;
    describe(`${r.name}: ${r.description}`, () => {
      const { model, diagnosis, caps, gap } = rebuild(r);

      it(`is called a ${want.kind}${want.runtime ? ` of ${want.runtime}` : ""} with restriction model ${want.model}`, () => {
        assert.equal(diagnosis.kind, want.kind, diagnosis.evidence.join("; "));
        if (want.runtime) assert.equal(diagnosis.runtime, want.runtime);
        assert.equal(model, want.model);
      });

      it(`names the blocking layers ${want.layers.join(", ") || "(none)"} and the one bwrap hit`, () => {
        assert.deepEqual(
          diagnosis.blockers.map((b) => b.layer),
          want.layers,
        );
        assert.deepEqual(
          diagnosis.blockers.filter((b) => b.hit).map((b) => b.layer),
          want.hit ? [want.hit] : [],
        );
      });

      it("reports the backend that load() then used", () => {
        assert.ok(r.observed.loadBackend, "the recording has the load's backend");
        assert.equal(defaultLoadBackend(caps), r.observed.loadBackend);
      });

      it("gives only the measured remedy, never --cap-add SYS_ADMIN, and says Landlock confines meanwhile", () => {
        if (want.layers.length === 0) {
          assert.equal(gap, undefined);
          return;
        }
        assert.ok(gap);
        const text = `${gap.problem}\n${gap.remedy.join("\n")}`;
        if (want.runtime === "podman") {
          // Measured: podman needs the same pair (unmask=ALL alone leaves sethostname refused); no Docker line.
          assert.ok(gap.remedy.includes(PODMAN_FIX), text);
          assert.doesNotMatch(text, /docker run|systempaths/);
        } else {
          assert.ok(text.includes(DOCKER_FIX), text);
          assert.ok(
            text.includes("procMount: Unmasked") && text.includes("seccompProfile: { type: Unconfined }"),
            text,
          );
        }
        assert.ok(!/cap-add|capabilities: \{ add/.test(text), `no capability is suggested:\n${text}`);
        assert.match(gap.problem, /Landlock \(ABI \d+\) already confines the extensions/);
        assert.ok(text.includes(`bwrap said: "${r.detected.probes[0]!.stderr.trim()}"`), "bwrap's own words are shown");
      });
    });
  }
});

describe("container or VM, from evidence", () => {
  const base: HostFiles = {
    platform: "linux",
    userNsFile: true,
    grsecurity: false,
    dockerenv: false,
    containerenv: false,
  };
  const root = (fstype: string, source: string) =>
    `27 1 254:0 / / rw,relatime - ${fstype} ${source} rw\n22 27 0:21 / /proc rw - proc proc rw\n`;

  it("a VM whose image keeps /.dockerenv is a VM: root on a block device, hypervisor flag", () => {
    assert.equal(
      classifyMachine({ ...base, dockerenv: true, hypervisor: true, mountinfo: root("ext4", "/dev/vda") }).kind,
      "vm",
    );
  });

  it("/.dockerenv on an overlay root is a Docker container, hypervisor or not", () => {
    const m = classifyMachine({ ...base, dockerenv: true, hypervisor: true, mountinfo: root("overlay", "overlay") });
    assert.deepEqual([m.kind, m.runtime], ["container", "docker"]);
  });

  it("over-mounts under /proc mark a container even without any marker file", () => {
    const masked = `${root("ext4", "/dev/sda1")}40 22 0:5 /null /proc/kcore rw - devtmpfs udev rw\n`;
    assert.equal(classifyMachine({ ...base, hypervisor: true, mountinfo: masked }).kind, "container");
  });

  it("a kubepods cgroup names Kubernetes, and its remedy is a securityContext, not docker options", () => {
    const files: HostFiles = {
      ...base,
      proc1Cgroup: "12:memory:/kubepods/burstable/pod1/abc\n",
      procSelfStatus: "CapEff:\t00000000a80425fb\nSeccomp:\t2\n",
      mountinfo: `${root("overlay", "overlay")}30 22 0:40 / /proc/kcore rw - tmpfs tmpfs rw\n`,
    };
    const d = diagnoseContainer(
      files,
      parseHostFiles(files),
      false,
      "bwrap: Creating new namespace failed: Operation not permitted",
    );
    assert.deepEqual([d.runtime, d.blockers.map((b) => b.layer)], ["kubernetes", ["seccomp", "masked-proc"]]);
    const text = containerGap(d, 6)!.remedy.join("\n");
    assert.match(text, /hostUsers: false/);
    assert.doesNotMatch(text, /docker run/);
  });

  it("a host sysctl that disables user namespaces is named as the host's, whatever bwrap's hint says", () => {
    const files: HostFiles = {
      ...base,
      dockerenv: true,
      maxUserNamespaces: "0\n",
      procSelfStatus: "CapEff:\t0\nSeccomp:\t2\n",
      mountinfo: root("overlay", "overlay"),
    };
    const facts = parseHostFiles(files);
    const stderr =
      "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.";
    assert.equal(decideModel(facts, "linux", { bwrapFound: true, fullOk: false, fullStderr: stderr }), "sysctl");
    assert.deepEqual(
      diagnoseContainer(files, facts, false, stderr).blockers.map((b) => b.layer),
      ["sysctl"],
    );
  });
});
