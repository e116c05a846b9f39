// Doctor: the report has every section, and the text output names each gap with its remedy.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { tensorTransport, type DoctorFacts } from "../src/doctor/collect.js";
import { collectCudaFacts } from "../src/doctor/cuda-probe.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { findExecutable } from "../src/sandbox/host.js";
import {
  CUDA_PROBE,
  judgeCudaInSandbox,
  parseCudaProbe,
  type CudaCheckFacts,
  type ProbeResult,
} from "../src/doctor/cuda.js";
import { formatDoctorJson, formatDoctorText } from "../src/doctor/format.js";
import { buildDoctorReport, pythonSupport, runDoctor, torchSupport, type DoctorReport } from "../src/doctor/report.js";
import { SegmentAllocator } from "../src/tensor/allocator.js";
import { nativeStatus } from "../src/tensor/native.js";

const PYTHON3 = await findExecutable("python3");
const FIXTURE = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "fixtures",
  "sandbox",
  "doctor",
  "ubuntu-gpu.json",
);
const SECTIONS = [
  "platform",
  "sandbox",
  "namespaces",
  "landlock",
  "tensorIpc",
  "pythons",
  "torch",
  "cudaIpc",
  "cudaInSandbox",
  "limits",
  "container",
  "gaps",
];

function assertSections(r: DoctorReport): void {
  assert.deepEqual(Object.keys(r).sort(), [...SECTIONS].sort());
  for (const key of ["user", "pid", "net"] as const) assert.equal(typeof r.namespaces[key], "boolean");
  assert.equal(typeof r.landlock.abi, "number");
  assert.ok(["memfd", "file", "copy"].includes(r.tensorIpc.method));
  assert.ok(["full", "none", "skipped"].includes(r.cudaInSandbox.status) && r.cudaInSandbox.detail.length > 0);
}

function assertGapsNamed(r: DoctorReport, text: string): void {
  for (const gap of r.gaps) {
    assert.ok(text.includes(gap.problem), `text names the gap "${gap.problem}"`);
    assert.ok(gap.remedy.length > 0, `${gap.id} has a remedy`);
    for (const step of gap.remedy) assert.ok(text.includes(step), `text shows the remedy step "${step}"`);
  }
}

describe("doctor report from recorded facts", () => {
  const facts = (JSON.parse(readFileSync(FIXTURE, "utf8")) as { facts: DoctorFacts }).facts;
  const report = buildDoctorReport(facts);
  const text = formatDoctorText(report);

  it("has every section", () => assertSections(report));

  it("finds each gap: sandbox, tensor IPC, torch, CUDA IPC, CUDA inside the sandbox", () => {
    const ids = report.gaps.map((g) => g.id).sort();
    assert.deepEqual(ids, [
      "cuda-ipc-disabled",
      "cuda-sandbox",
      "memfd-missing",
      "shm-small",
      "torch-too-old",
      "userns-apparmor",
    ]);
    assert.equal(report.sandbox.status, "degraded");
    assert.equal(report.sandbox.backend, "landlock");
    assert.equal(report.tensorIpc.method, "file");
    assert.equal(report.tensorIpc.status, "degraded");
    assert.equal(report.cudaIpc.status, "degraded");
    assert.equal(report.cudaInSandbox.status, "none");
    assert.deepEqual(
      report.pythons.map((p) => [p.version, p.support]),
      [
        ["3.8.10", "unsupported"],
        ["3.9.18", "supported"],
      ],
    );
    assert.equal(report.torch.support, "unsupported");
  });

  it("a tiny /dev/shm is a warning that says transfers still work", () => {
    const shm = report.gaps.find((g) => g.id === "shm-small")!;
    assert.match(
      shm.problem,
      /only 64 MiB free \(Docker's default is 64 MB\): tensor transfers still work \(memfd and private files do not use \/dev\/shm\)/,
    );
    assert.ok(shm.remedy.some((s) => s.includes("--shm-size")));
  });

  it("the text names each gap with its remedy, and each section", () => {
    assertGapsNamed(report, text);
    for (const area of [
      "Sandbox",
      "Namespaces",
      "Landlock",
      "Tensor IPC",
      "Python 3.9.18",
      "PyTorch",
      "CUDA IPC",
      "CUDA in sandbox",
      "Container",
    ])
      assert.ok(text.includes(area), area);
    assert.match(text, /\$ export PYISOLATE_ENABLE_CUDA_IPC=1/);
    assert.match(text, /Gaps \(6\):/);
  });

  it("JSON is the same report as data", () => {
    assert.deepEqual(JSON.parse(formatDoctorJson(report)), report);
  });

  it("with CUDA IPC on and bwrap as the sandbox, says that CUDA-sharing extensions should run under Landlock", () => {
    const bwrap = { ...facts, cudaIpcEnabled: true, caps: { ...facts.caps, backend: "bwrap" as const } };
    const gap = buildDoctorReport(bwrap).gaps.find((g) => g.id === "cuda-ipc-bwrap");
    assert.ok(gap, "the gap is reported");
    assert.match(gap.problem, /PID namespaces/);
    assert.ok(gap.remedy.some((step) => step.includes('backend: "landlock"')));
    assert.equal(
      buildDoctorReport({ ...facts, cudaIpcEnabled: true }).gaps.find((g) => g.id === "cuda-ipc-bwrap"),
      undefined,
      "not under Landlock",
    );
  });
});

describe("support tables", () => {
  it("rates Python versions by what the guest runtime's tests run on: 3.9 to 3.13", () => {
    for (const v of ["3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"])
      assert.deepEqual(pythonSupport(v), { support: "supported", note: "tested" }, v);
    assert.equal(pythonSupport("3.8.18").support, "unsupported");
    assert.equal(pythonSupport("2.7.18").support, "unsupported");
    assert.equal(pythonSupport("3.14.0").support, "unknown");
  });
  it("rates torch versions as pyisolate's matrix does", () => {
    assert.equal(torchSupport("2.5.1+cu124").support, "supported");
    assert.equal(torchSupport("1.13.1").support, "limited");
    assert.equal(torchSupport("1.12.0").support, "limited");
    assert.equal(torchSupport("1.11.0").support, "unsupported");
  });
});

describe("tensor transport in the report", () => {
  const recorded = (JSON.parse(readFileSync(FIXTURE, "utf8")) as { facts: DoctorFacts }).facts;
  const withTensor = (tensor: DoctorFacts["tensor"], over: Partial<DoctorFacts> = {}): DoctorReport =>
    buildDoctorReport({ ...recorded, ...over, tensor });
  const gap = (r: DoctorReport, id: string) => r.gaps.find((g) => g.id === id);

  it("no native addon: copies, with the rebuild and the build tools as the remedy", () => {
    const reason =
      "the addon was not built (/x/native/build/Release/pyisolate_native.node is missing; run npm rebuild pyisolate)";
    const r = withTensor({
      mode: "copy",
      reason: `copying: native addon unavailable (${reason})`,
      native: { available: false, reason },
    });
    assert.equal(r.tensorIpc.method, "copy");
    assert.equal(r.tensorIpc.status, "none");
    const g = gap(r, "tensor-native-missing")!;
    assert.match(g.problem, /not in use \(the addon was not built.*copied between processes/);
    assert.ok(g.remedy.includes("npm rebuild pyisolate") && g.remedy.some((s) => s.includes("build-essential")));
    assert.equal(gap(r, "memfd-missing"), undefined, "one cause, one gap");
    assert.match(formatDoctorText(r), /copying: native addon unavailable/);
  });

  it("an addon disabled on purpose names the variable; memfd disabled likewise", () => {
    const off = withTensor({
      mode: "copy",
      reason: "copying: native addon unavailable (disabled by PYISOLATE_DISABLE_NATIVE=1)",
      native: { available: false, reason: "disabled by PYISOLATE_DISABLE_NATIVE=1" },
    });
    assert.deepEqual(gap(off, "tensor-native-missing")!.remedy, ["unset PYISOLATE_DISABLE_NATIVE"]);
    const file = withTensor({
      mode: "file",
      reason: "files in a private folder, zero-copy: memfd disabled (PYISOLATE_DISABLE_MEMFD or option)",
      native: { available: true, reason: null },
    });
    assert.deepEqual(gap(file, "memfd-missing")!.remedy, ["unset PYISOLATE_DISABLE_MEMFD"]);
    assert.match(gap(file, "memfd-missing")!.problem, /^memfd is not used \(memfd disabled .*still zero-copy/);
  });

  it("memfd with a roomy /dev/shm: no tensor gap at all", () => {
    const r = withTensor(
      {
        mode: "memfd",
        reason: "anonymous shared memory (memfd), zero-copy",
        native: { available: true, reason: null },
      },
      { devShm: { present: true, freeBytes: 8 * 2 ** 30 } },
    );
    assert.equal(r.tensorIpc.status, "full");
    assert.deepEqual(
      r.gaps.filter((g) => g.section === "tensorIpc"),
      [],
    );
  });

  it("the facts come from a real allocation: addon off gives copy, memfd off gives files", () => {
    assert.equal(
      tensorTransport(new SegmentAllocator({ native: { available: false, reason: "test", path: "" } })).mode,
      "copy",
    );
    if (!nativeStatus.available) return;
    assert.equal(tensorTransport(new SegmentAllocator({ memfd: false })).mode, "file");
    assert.equal(tensorTransport(new SegmentAllocator({ memfd: true })).mode, "memfd");
  });

  it("with no interpreter from 3.9 to 3.13 there is a python gap", () => {
    const r = buildDoctorReport({
      ...recorded,
      pythons: [{ version: "3.8.10", path: "/usr/bin/python3.8" } as DoctorFacts["pythons"][number]],
    });
    assert.match(r.gaps.find((g) => g.id === "python-none-supported")!.problem, /3\.9 to 3\.13/);
  });
});

describe("CUDA inside the sandbox (recorded probe runs)", () => {
  const OK: ProbeResult = {
    torch: "2.5.1+cu124",
    cuda_build: "12.4",
    available: true,
    devices: 2,
    alloc: 2048,
    error: null,
    site: "/opt/venv/lib/python3.12/site-packages",
    prefix: "/opt/venv",
    base_prefix: "/usr",
    executable: "/usr/bin/python3.12",
  };
  const run = (r: Partial<ProbeResult> | undefined, stderr = "", exitCode: number | null = 0) => ({
    exitCode,
    stdout: r ? `noise\nPYISOLATE-CUDA ${JSON.stringify({ ...OK, ...r })}\n` : "",
    stderr,
  });
  const judge = (f: CudaCheckFacts) => judgeCudaInSandbox({ python: "/usr/bin/python3", backend: "bwrap", ...f });

  it("skips, saying why, with no GPU, no python3, no torch, a CPU-only torch, or no sandbox", () => {
    assert.match(judge({ skipped: "no-gpu" }).row.detail, /no GPU visible/);
    assert.match(judge({ skipped: "no-python" }).row.detail, /no python3 to check with/);
    const noTorch = judge({
      outside: run({
        torch: null,
        cuda_build: null,
        available: false,
        error: "ModuleNotFoundError: No module named 'torch'",
      }),
    });
    assert.equal(noTorch.row.status, "skipped");
    assert.match(
      noTorch.row.detail,
      /^no torch to check with \(\/usr\/bin\/python3 cannot import torch: ModuleNotFoundError/,
    );
    assert.match(judge({ outside: run({ cuda_build: null, available: false }) }).row.detail, /CPU-only build/);
    const bare = judge({ backend: "none", outside: run({}) });
    assert.equal(bare.row.status, "skipped");
    assert.match(bare.row.detail, /no sandbox to check inside/);
    for (const r of [noTorch, bare]) assert.equal(r.gap, undefined);
  });

  it("works inside: full, with the device count", () => {
    const r = judge({ outside: run({}), inside: run({}) });
    assert.equal(r.row.status, "full");
    assert.match(
      r.row.detail,
      /CUDA initialises inside the sandbox \(bwrap, gpu: true\): 2 device\(s\), a tiny allocation works/,
    );
    assert.equal(r.gap, undefined);
  });

  it("a silent CPU fall-back inside is a gap, with torch's own warning and the remedy", () => {
    const warning = "UserWarning: CUDA initialization: Unexpected error from cudaGetDeviceCount(). Error 304";
    const r = judge({ outside: run({}), inside: run({ available: false, devices: 0, alloc: null }, `${warning}\n`) });
    assert.equal(r.row.status, "none");
    assert.equal(r.gap!.id, "cuda-sandbox");
    assert.match(
      r.gap!.problem,
      /works on this host but not inside the sandbox \(bwrap, gpu: true\): torch\.cuda\.is_available\(\) is False: UserWarning.*silently run on the CPU/,
    );
    assert.ok(
      r.gap!.remedy.some((s) => s.includes("gpu: true")) && r.gap!.remedy.some((s) => s.includes("/dev/nvidia")),
    );
  });

  it("inside: torch not importable, an allocation that fails, a probe that crashed: each a gap that says which", () => {
    const noImport = judge({
      outside: run({}),
      inside: run({
        torch: null,
        available: false,
        error: "ImportError: libcudart.so.12: cannot open shared object file",
      }),
    });
    assert.match(noImport.gap!.problem, /torch cannot be imported: ImportError: libcudart/);
    const alloc = judge({
      outside: run({}),
      inside: run({ alloc: null, error: "RuntimeError: CUDA error: operation not permitted" }),
    });
    assert.match(alloc.gap!.problem, /initialises but a tiny allocation fails: RuntimeError/);
    const crash = judge({ outside: run({}), inside: run(undefined, "bwrap: Can't bind mount /dev/nvidia-uvm\n", 1) });
    assert.match(crash.gap!.problem, /the probe failed \(exit 1\): bwrap: Can't bind mount/);
  });

  it("CUDA broken on the host is not blamed on the sandbox", () => {
    const r = judge({
      outside: run({ available: false, devices: 0, alloc: null }, "UserWarning: CUDA driver version is insufficient\n"),
    });
    assert.equal(r.gap!.id, "cuda-host");
    assert.match(r.row.detail, /even outside the sandbox: UserWarning: CUDA driver version is insufficient/);
  });

  it("recorded on an H200 under Landlock: Error 304 without /proc/self writable, CUDA inside with it, nothing without the device nodes", () => {
    const file = path.join(path.dirname(FIXTURE), "h200-landlock-cuda.json");
    const rec = JSON.parse(readFileSync(file, "utf8")) as Record<
      "before" | "after" | "withoutDeviceNodes",
      CudaCheckFacts
    >;
    const before = judgeCudaInSandbox(rec.before);
    assert.equal(before.gap?.id, "cuda-sandbox");
    assert.match(before.gap!.problem, /\(landlock, gpu: true\): torch\.cuda\.is_available\(\) is False: .*Error 304/);
    const after = judgeCudaInSandbox(rec.after);
    assert.equal(after.row.status, "full");
    assert.match(after.row.detail, /1 device\(s\), a tiny allocation works \(torch 2\.11\.0\+cu130\)/);
    assert.equal(
      judgeCudaInSandbox(rec.withoutDeviceNodes).row.status,
      "none",
      "a silent fall-back, with no warning at all",
    );
  });

  it(
    "the probe script, run by python3, reports a missing torch and a working one on its marker line",
    { skip: PYTHON3 ? false : "no python3 on PATH" },
    () => {
      const dir = realpathSync(mkdtempSync(path.join(tmpdir(), "pyisolate-cuda-probe-")));
      try {
        // -I: no user site and no PYTHONPATH, so only the folder given as argv[1] can hold a torch.
        const run = (folder: string) =>
          parseCudaProbe(execFileSync(PYTHON3!, ["-I", "-c", CUDA_PROBE, folder], { encoding: "utf8" }));
        const missing = run(path.join(dir, "empty"));
        assert.equal(missing?.torch, null);
        assert.match(missing?.error ?? "", /^ModuleNotFoundError: No module named 'torch'/);
        const site = path.join(dir, "site");
        fakeTorch(site, path.join(site, "torch", "__init__.py"));
        const working = run(site);
        assert.deepEqual(
          {
            torch: working?.torch,
            cuda_build: working?.cuda_build,
            available: working?.available,
            devices: working?.devices,
            alloc: working?.alloc,
            error: working?.error,
          },
          { torch: "0.0+fake", cuda_build: "12.4", available: true, devices: 1, alloc: 2048, error: null },
        );
        assert.equal(working?.site, site, "outside, the probe says where torch lives");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

/**
 * A stand-in torch whose "driver" is a file: CUDA is "available" when the file can be read. Outside the sandbox
 * it can; inside, a file the sandbox does not show plays the missing device node.
 */
function fakeTorch(site: string, driver: string): void {
  mkdirSync(path.join(site, "torch"), { recursive: true });
  writeFileSync(
    path.join(site, "torch", "__init__.py"),
    `__version__ = "0.0+fake"\nclass version:\n    cuda = "12.4"\n` +
      `def _driver():\n    try:\n        open(${JSON.stringify(driver)}).close()\n        return True\n    except OSError:\n        return False\n` +
      `class cuda:\n    is_available = staticmethod(_driver)\n    device_count = staticmethod(lambda: 1)\n` +
      `class _T:\n    def __init__(self, v): self.v = v\n    def __mul__(self, k): return _T([x * k for x in self.v])\n    def sum(self): return _T(sum(self.v))\n    def item(self): return self.v\n` +
      `def ones(n, device=None):\n    return _T([1.0] * n)\n`,
  );
}

describe("CUDA check on this machine, with a stand-in torch (no GPU here)", async () => {
  const caps = await detectSandbox();
  const python = await findExecutable("python3");
  const skip = caps.backend === "none" ? "no sandbox on this host" : !python ? "no python3" : false;
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), "pyisolate-fake-torch-")));
  const site = path.join(dir, "site");
  const env = { ...process.env, PYTHONPATH: site };
  const backends = [
    caps.backend,
    ...(caps.backend !== "landlock" && caps.landlockAbi > 0 ? (["landlock"] as const) : []),
  ];

  for (const backend of backends) {
    it(`${backend}: a driver the sandbox does not show is reported as a silent CPU fall-back`, { skip }, async () => {
      fakeTorch(site, path.join(dir, "driver-outside"));
      writeFileSync(path.join(dir, "driver-outside"), "");
      const facts = await collectCudaFacts({ caps: { ...caps, backend }, gpuVisible: true, python: python!, env });
      const { row, gap } = judgeCudaInSandbox(facts);
      assert.equal(row.status, "none", JSON.stringify(facts));
      assert.equal(gap?.id, "cuda-sandbox");
      assert.match(
        gap!.problem,
        new RegExp(`not inside the sandbox \\(${backend}, gpu: true\\): torch\\.cuda\\.is_available\\(\\) is False`),
      );
    });

    it(`${backend}: a driver the sandbox shows: CUDA initialises inside`, { skip }, async () => {
      fakeTorch(site, path.join(site, "torch", "__init__.py"));
      const facts = await collectCudaFacts({ caps: { ...caps, backend }, gpuVisible: true, python: python!, env });
      const { row, gap } = judgeCudaInSandbox(facts);
      assert.equal(row.status, "full", JSON.stringify(facts));
      assert.equal(gap, undefined);
    });
  }

  after(() => rmSync(dir, { recursive: true, force: true }));
});

describe("doctor on this machine", () => {
  it("reports every section, and text and JSON agree on the gaps", async (t) => {
    if (process.platform !== "linux") return t.skip(`not Linux (${process.platform})`);
    const report = await runDoctor();
    assertSections(report);
    assert.ok(
      report.pythons.some((p) => p.support === "supported"),
      "python3 of this machine is listed",
    );
    assertGapsNamed(report, formatDoctorText(report));
    assert.deepEqual(JSON.parse(formatDoctorJson(report)), report);
    assert.equal(report.tensorIpc.method, tensorTransport().mode, "the transport this host's allocator really uses");
    if (!report.cudaIpc.gpuVisible) {
      assert.equal(report.cudaInSandbox.status, "skipped");
      assert.match(report.cudaInSandbox.detail, /no GPU visible/, "the real CUDA check skips with its reason");
    }
  });
});
