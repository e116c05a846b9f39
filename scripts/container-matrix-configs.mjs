// The container matrix's configurations as data, the docker arguments each gets, and the matrix rendered from results.

import { existsSync } from "node:fs";

/**
 * Each Docker configuration the matrix runs. Every one keeps Docker's default 64 MB /dev/shm, and every one sends a
 * 1 GiB tensor. `--read-only` needs somewhere to write: tmpfs on /tmp, /var/tmp and root's home, as a deployment
 * with a read-only root would give it. `--privileged` is not here: on the machine this was built on, runc cannot
 * start it ("unable to apply caps": the VM's own bounding set lacks a capability).
 */
export const CONFIGS = [
  { name: "default", options: [] },
  { name: "cap-sys-admin", options: ["--cap-add", "SYS_ADMIN"] },
  { name: "seccomp-unconfined", options: ["--security-opt", "seccomp=unconfined"] },
  { name: "sys-admin-seccomp-unconfined", options: ["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"] },
  { name: "seccomp-systempaths-unconfined", options: ["--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"] },
  { name: "read-only-root", options: ["--read-only", "--tmpfs", "/tmp:rw,exec,size=4g", "--tmpfs", "/var/tmp:rw,exec", "--tmpfs", "/root:rw,exec"] },
  { name: "user-1000", options: ["--user", "1000:1000"] },
  { name: "user-1000-unconfined", options: ["--user", "1000:1000", "--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"] },
  { name: "network-none", options: ["--network", "none"] },
];

/** The machine's local package index and wheels, read-only, so installs work with --network none too. */
function indexArgs() {
  const args = [];
  for (const dir of ["/opt/pypi", "/opt/pypi-more", "/opt/wheels"]) if (existsSync(dir)) args.push("-v", `${dir}:${dir}:ro`);
  if (existsSync("/opt/pypi/simple")) args.push("-e", "PIP_INDEX_URL=file:///opt/pypi/simple");
  if (existsSync("/opt/pypi-more/simple")) args.push("-e", "PIP_EXTRA_INDEX_URL=file:///opt/pypi-more/simple");
  if (existsSync("/opt/wheels")) args.push("-e", "PIP_FIND_LINKS=/opt/wheels");
  return [...args, "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1"];
}

export function dockerArgs(config) {
  return [...config.options, ...indexArgs()];
}

/** One row: what the load used, what detection said, and whether each check passed. */
export function matrixRow(result) {
  const p = result.probe ?? {};
  const a = p.attack ?? {};
  const t = p.tensors ?? {};
  const detected = p.detected?.backend ?? "?";
  const started = result.dockerRc !== 125 && result.dockerRc !== 126 && result.dockerRc !== 127;
  const backend = !started ? `the container did not start: ${result.dockerErr}` : a.backend ?? (a.error ? `load failed: ${a.error}` : p.error ?? "?");
  const attacksOk = a.total > 0 && a.blocked === a.total;
  const zeroCopy = t.shared === true && t.hostSawWrite === true;
  const demoOk = result.demo?.rc === 0;
  const agree = a.backend !== undefined && detected === a.backend;
  return {
    configuration: result.name,
    backend: a.degraded ? `${backend} (fallback)` : backend,
    doctor: `${detected}, model ${p.detected?.model ?? "?"}${agree ? "" : " (DISAGREES with the load)"}`,
    attacks: a.total ? `${a.blocked}/${a.total}${a.through?.length ? ` (through: ${a.through.join(", ")})` : ""}` : "not run",
    tensors: zeroCopy ? "yes (1 GiB)" : t.error ? `no: ${t.error}` : "no",
    demo: demoOk ? "ok" : `failed (rc ${result.demo?.rc})`,
    ok: attacksOk && zeroCopy && demoOk && agree,
  };
}

const COLUMNS = ["configuration", "backend", "doctor", "attacks", "tensors", "demo"];
const HEADINGS = ["configuration", "backend (load)", "doctor says", "attacks blocked", "tensors zero-copy", "demo"];

export function renderTable(rows) {
  const cells = [HEADINGS, ...rows.map((r) => COLUMNS.map((c) => String(r[c])))];
  const widths = HEADINGS.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd()).join("\n");
}

/** Doctor's sandbox rows and its [sandbox] gaps with their remedy lines. */
function doctorExcerpt(text) {
  const out = [];
  let inSandboxGap = false;
  for (const line of text.split("\n")) {
    if (/^\s{2}\d+\. \[/.test(line)) inSandboxGap = line.includes("[sandbox]");
    else if (!/^\s{7}/.test(line)) inSandboxGap = false;
    if (/^\s+(Sandbox|Namespaces|Landlock|Tensor IPC|Container)\b/.test(line) || inSandboxGap) out.push(line);
  }
  return out;
}

/** The matrix as markdown, then each configuration's doctor output (its sandbox rows and remedies). */
export function renderMarkdown(results) {
  const rows = results.map(matrixRow);
  const opts = Object.fromEntries(results.map((r) => [r.name, r.options.join(" ") || "(none)"]));
  const lines = [`| ${HEADINGS.join(" | ")} | \`docker run\` options |`, `|${HEADINGS.map(() => "---").join("|")}|---|`];
  for (const r of rows) lines.push(`| ${COLUMNS.map((c) => r[c]).join(" | ")} | \`${opts[r.configuration]}\` |`);
  lines.push("");
  for (const r of results) {
    const doctor = doctorExcerpt(r.doctor);
    lines.push(`### ${r.name}`, "", `\`docker run ${opts[r.name]}\` (${r.seconds} s)`, "", "```", ...doctor, "```", "");
  }
  return `${lines.join("\n")}\n`;
}
