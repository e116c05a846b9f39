// Renders a doctor report: a readable text table with every gap and its remedy, or the same as JSON.

import { limitSupportLine } from "../limits/mechanisms.js";
import type { DoctorReport } from "./report.js";

function bytes(n: number | null): string {
  if (n === null) return "free space unknown";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]} free`;
}

const yesNo = (b: boolean): string => (b ? "yes" : "no");

function containerDetail(c: DoctorReport["container"]): string {
  const why = c.evidence.length > 0 ? ` (${c.evidence.join("; ")})` : "";
  if (!c.detected) return `${c.kind === "vm" ? "a virtual machine, not a container" : "not in a container"}${why}`;
  const stops = c.blockers.length > 0 ? `; bwrap is stopped by: ${c.blockers.join(", then ")}` : "";
  return `${c.runtime ?? "a"} container${stops}${why}`;
}

/** The rows of the matrix: area, status, details. */
export function doctorRows(r: DoctorReport): [string, string, string][] {
  const ns = Object.entries(r.namespaces)
    .map(([k, v]) => `${k} ${yesNo(v)}`)
    .join(", ");
  const nsStatus =
    r.namespaces.user && r.namespaces.pid && r.namespaces.net
      ? "full"
      : Object.values(r.namespaces).some(Boolean)
        ? "degraded"
        : "none";
  const rows: [string, string, string][] = [
    ["Platform", r.platform.os, `${r.platform.arch}, kernel ${r.platform.kernel}${r.platform.wsl ? " (WSL2)" : ""}`],
    [
      "Sandbox",
      r.sandbox.status,
      `backend ${r.sandbox.backend}, restriction model ${r.sandbox.model}${r.sandbox.bwrap ? `, bwrap ${r.sandbox.bwrap.version ?? "?"} (${r.sandbox.bwrap.path})` : ", no bwrap"}`,
    ],
    ["Namespaces", nsStatus, ns],
    [
      "Landlock",
      r.landlock.status,
      r.landlock.abi > 0
        ? `ABI ${r.landlock.abi}${r.landlock.networkRules ? ", filesystem and network rules" : ", filesystem rules only"}`
        : "not offered by the kernel",
    ],
    [
      "Tensor IPC",
      r.tensorIpc.status,
      `${r.tensorIpc.reason}; native addon ${r.tensorIpc.native.available ? "loaded" : "missing"}; python3 memfd ${yesNo(r.tensorIpc.memfd)}; ` +
        `/dev/shm ${r.tensorIpc.devShm.present ? bytes(r.tensorIpc.devShm.freeBytes) : "missing"} (not used by tensor transfers)`,
    ],
  ];
  if (r.pythons.length === 0) rows.push(["Python", "none", "no interpreter found"]);
  for (const p of r.pythons) rows.push([`Python ${p.version}`, p.support, `${p.path}${p.note ? ` (${p.note})` : ""}`]);
  rows.push([
    "PyTorch",
    r.torch.support,
    r.torch.version ? `${r.torch.version} for ${r.torch.python} (${r.torch.note})` : r.torch.note,
  ]);
  rows.push([
    "CUDA IPC",
    r.cudaIpc.status,
    `PYISOLATE_ENABLE_CUDA_IPC ${r.cudaIpc.enabled ? "=1" : "unset"}; GPU ${r.cudaIpc.gpuVisible ? `visible (${r.cudaIpc.gpuSource})` : "not visible"}`,
  ]);
  const cs = r.cudaInSandbox;
  rows.push(["CUDA in sandbox", cs.status, cs.detail]);
  rows.push(["Resource limits", r.limits.status, limitSupportLine(r.limits)]);
  rows.push([
    "Container",
    r.container.detected ? "detected" : r.container.kind === "vm" ? "vm" : "no",
    containerDetail(r.container),
  ]);
  return rows;
}

/** The report as a text table, then each gap with its remedy (commands prefixed with "$"). */
export function formatDoctorText(r: DoctorReport): string {
  const rows = doctorRows(r);
  const head: [string, string, string] = ["Area", "Status", "Details"];
  const w0 = Math.max(...[head, ...rows].map((x) => x[0].length));
  const w1 = Math.max(...[head, ...rows].map((x) => x[1].length));
  const line = (x: [string, string, string]) => `  ${x[0].padEnd(w0)}  ${x[1].padEnd(w1)}  ${x[2]}`.trimEnd();
  const out = [
    "pyisolate doctor",
    "",
    line(head),
    `  ${"-".repeat(w0)}  ${"-".repeat(w1)}  ${"-".repeat(7)}`,
    ...rows.map(line),
    "",
  ];
  if (r.gaps.length === 0) {
    out.push("No gaps: everything pyisolate uses works here.");
  } else {
    out.push(`Gaps (${r.gaps.length}):`);
    r.gaps.forEach((g, i) => {
      out.push(`  ${i + 1}. [${g.section}] ${g.problem}`);
      for (const step of g.remedy) out.push(step.startsWith("#") ? `       ${step}` : `       $ ${step}`);
    });
  }
  return `${out.join("\n")}\n`;
}

/** `--json`: the same report as data. */
export function formatDoctorJson(r: DoctorReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
