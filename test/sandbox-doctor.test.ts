// Doctor: the report has every section, and the text output names each gap with its remedy.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { DoctorFacts } from "../src/sandbox/doctor-collect.js";
import { formatDoctorJson, formatDoctorText } from "../src/sandbox/doctor-format.js";
import { buildDoctorReport, pythonSupport, runDoctor, torchSupport, type DoctorReport } from "../src/sandbox/doctor.js";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "sandbox", "doctor", "ubuntu-gpu.json");
const SECTIONS = ["platform", "sandbox", "namespaces", "landlock", "tensorIpc", "pythons", "torch", "cudaIpc", "container", "gaps"];

function assertSections(r: DoctorReport): void {
  assert.deepEqual(Object.keys(r).sort(), [...SECTIONS].sort());
  for (const key of ["user", "pid", "net"] as const) assert.equal(typeof r.namespaces[key], "boolean");
  assert.equal(typeof r.landlock.abi, "number");
  assert.ok(["memfd", "shm", "copy"].includes(r.tensorIpc.method));
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

  it("finds each gap: sandbox, tensor IPC, python, torch, CUDA IPC", () => {
    const ids = report.gaps.map((g) => g.id).sort();
    assert.deepEqual(ids, ["cuda-ipc-disabled", "memfd-missing", "python-none-supported", "shm-small", "torch-too-old", "userns-apparmor"]);
    assert.equal(report.sandbox.status, "degraded");
    assert.equal(report.sandbox.backend, "landlock");
    assert.equal(report.tensorIpc.method, "shm");
    assert.equal(report.cudaIpc.status, "degraded");
    assert.deepEqual(report.pythons.map((p) => [p.version, p.support]), [["3.8.10", "unsupported"], ["3.9.18", "limited"]]);
    assert.equal(report.torch.support, "unsupported");
  });

  it("the text names each gap with its remedy, and each section", () => {
    assertGapsNamed(report, text);
    for (const area of ["Sandbox", "Namespaces", "Landlock", "Tensor IPC", "Python 3.9.18", "PyTorch", "CUDA IPC", "Container"]) assert.ok(text.includes(area), area);
    assert.match(text, /\$ export PYISOLATE_ENABLE_CUDA_IPC=1/);
    assert.match(text, /Gaps \(6\):/);
  });

  it("JSON is the same report as data", () => {
    assert.deepEqual(JSON.parse(formatDoctorJson(report)), report);
  });
});

describe("support tables", () => {
  it("rates Python versions as pyisolate's matrix does", () => {
    assert.equal(pythonSupport("3.12.1").support, "supported");
    assert.equal(pythonSupport("3.11.7").support, "supported");
    assert.equal(pythonSupport("3.10.13").support, "supported");
    assert.equal(pythonSupport("3.9.18").support, "limited");
    assert.equal(pythonSupport("3.8.18").support, "unsupported");
    assert.equal(pythonSupport("3.13.0").support, "limited");
  });
  it("rates torch versions as pyisolate's matrix does", () => {
    assert.equal(torchSupport("2.5.1+cu124").support, "supported");
    assert.equal(torchSupport("1.13.1").support, "limited");
    assert.equal(torchSupport("1.12.0").support, "limited");
    assert.equal(torchSupport("1.11.0").support, "unsupported");
  });
});

describe("doctor on this machine", () => {
  it("reports every section, and text and JSON agree on the gaps", async (t) => {
    if (process.platform !== "linux") return t.skip(`not Linux (${process.platform})`);
    const report = await runDoctor();
    assertSections(report);
    assert.ok(report.pythons.some((p) => p.support === "supported"), "python3 of this machine is listed");
    assertGapsNamed(report, formatDoctorText(report));
    assert.deepEqual(JSON.parse(formatDoctorJson(report)), report);
  });
});
