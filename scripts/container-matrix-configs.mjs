// The container matrix's configurations as data, the docker arguments each gets, and the matrix rendered from results.

import { existsSync } from "node:fs";

/** The layers doctor names when bwrap is stopped by the engine's defaults: its seccomp profile, then the masked /proc. */
const DEFAULT_LAYERS = ["seccomp", "masked-proc"];

/**
 * Each configuration the matrix runs, with the engine that runs it and what it must give: the backend the default
 * load takes and the layers doctor names (a row that gives anything else has regressed). Every one keeps the
 * engine's default 64 MB /dev/shm, and every one sends a 1 GiB tensor. `--read-only` needs somewhere to write: tmpfs
 * on /tmp, /var/tmp and root's home, as a deployment with a read-only root would give it. Docker's `--privileged`
 * is not here: on the machine this was built on, runc cannot start it ("unable to apply caps": the VM's own bounding
 * set lacks CAP_SYS_RESOURCE). Rootless podman gets `--network none`: its slirp4netns needs /dev/net/tun, which
 * the machine this was built on does not let an unprivileged user open.
 */
export const CONFIGS = [
  { name: "default", engine: "docker", options: [], expect: { backend: "landlock", layers: DEFAULT_LAYERS } },
  {
    name: "cap-sys-admin",
    engine: "docker",
    options: ["--cap-add", "SYS_ADMIN"],
    expect: { backend: "landlock", layers: DEFAULT_LAYERS },
  },
  {
    name: "seccomp-unconfined",
    engine: "docker",
    options: ["--security-opt", "seccomp=unconfined"],
    expect: { backend: "landlock", layers: ["masked-proc"] },
  },
  {
    name: "sys-admin-seccomp-unconfined",
    engine: "docker",
    options: ["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"],
    expect: { backend: "landlock", layers: ["masked-proc"] },
  },
  {
    name: "seccomp-systempaths-unconfined",
    engine: "docker",
    options: ["--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"],
    expect: { backend: "bwrap", layers: [] },
  },
  {
    name: "read-only-root",
    engine: "docker",
    options: [
      "--read-only",
      "--tmpfs",
      "/tmp:rw,exec,size=4g",
      "--tmpfs",
      "/var/tmp:rw,exec",
      "--tmpfs",
      "/root:rw,exec",
    ],
    expect: { backend: "landlock", layers: DEFAULT_LAYERS },
  },
  {
    name: "user-1000",
    engine: "docker",
    options: ["--user", "1000:1000"],
    expect: { backend: "landlock", layers: DEFAULT_LAYERS },
  },
  {
    name: "user-1000-unconfined",
    engine: "docker",
    options: [
      "--user",
      "1000:1000",
      "--security-opt",
      "seccomp=unconfined",
      "--security-opt",
      "systempaths=unconfined",
    ],
    expect: { backend: "bwrap", layers: [] },
  },
  {
    name: "network-none",
    engine: "docker",
    options: ["--network", "none"],
    expect: { backend: "landlock", layers: DEFAULT_LAYERS },
  },
  // podman's seccomp profile lets unshare through but refuses sethostname (bwrap's --hostname): both layers again.
  { name: "podman-default", engine: "podman", options: [], expect: { backend: "landlock", layers: DEFAULT_LAYERS } },
  {
    name: "podman-unmask",
    engine: "podman",
    options: ["--security-opt", "unmask=ALL"],
    expect: { backend: "landlock", layers: ["seccomp"] },
  },
  {
    name: "podman-seccomp-unmask",
    engine: "podman",
    options: ["--security-opt", "seccomp=unconfined", "--security-opt", "unmask=ALL"],
    expect: { backend: "bwrap", layers: [] },
  },
  {
    name: "podman-rootless",
    engine: "podman-rootless",
    options: ["--network", "none"],
    expect: { backend: "landlock", layers: DEFAULT_LAYERS },
  },
  {
    name: "podman-rootless-seccomp-unmask",
    engine: "podman-rootless",
    options: ["--network", "none", "--security-opt", "seccomp=unconfined", "--security-opt", "unmask=ALL"],
    expect: { backend: "bwrap", layers: [] },
  },
];

/** How a configuration is written on a command line: `docker run ...`, `podman run ...`, rootless podman. */
export function commandLine(config) {
  const engine =
    config.engine === "docker" ? "docker run" : config.engine === "podman" ? "podman run" : "podman run (rootless)";
  return `${engine} ${config.options.join(" ")}`.trim();
}

/** The machine's local package index and wheels, read-only, so installs work with --network none too. */
function indexArgs() {
  const args = [];
  for (const dir of ["/opt/pypi", "/opt/pypi-more", "/opt/wheels"])
    if (existsSync(dir)) args.push("-v", `${dir}:${dir}:ro`);
  if (existsSync("/opt/pypi/simple")) args.push("-e", "PIP_INDEX_URL=file:///opt/pypi/simple");
  if (existsSync("/opt/pypi-more/simple")) args.push("-e", "PIP_EXTRA_INDEX_URL=file:///opt/pypi-more/simple");
  if (existsSync("/opt/wheels")) args.push("-e", "PIP_FIND_LINKS=/opt/wheels");
  return [...args, "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1"];
}

/** The index mounts and variables every container of the matrix gets, after the configuration's own options. */
export function containerOptions(config) {
  return [...config.options, ...indexArgs()];
}

/** Why a finished configuration fails: each check that did not hold, and each way it differs from `expect`. */
export function failures(config, result) {
  const p = result.probe ?? {};
  const a = p.attack ?? {};
  const t = p.tensors ?? {};
  if (result.dockerRc === 125 || result.dockerRc === 126 || result.dockerRc === 127)
    return [`the container did not start: ${result.dockerErr}`];
  if (result.timedOut) return [`it ran past ${result.limitSeconds} s and was killed`];
  const why = [];
  if (p.error) why.push(p.error);
  if (a.error) why.push(`the attack extension did not load: ${a.error}`);
  else if (!(a.total > 0) || a.blocked !== a.total)
    why.push(`attacks blocked ${a.blocked}/${a.total}${a.through?.length ? `, through: ${a.through.join(", ")}` : ""}`);
  if (a.backend !== undefined && a.backend !== config.expect.backend)
    why.push(`the load used ${a.backend}, expected ${config.expect.backend}`);
  const detected = p.detected?.backend;
  if (a.backend !== undefined && detected !== a.backend)
    why.push(`doctor says ${detected}, the load used ${a.backend}`);
  const layers = (p.detected?.container?.blockers ?? []).map((b) => b.layer);
  if (p.detected && layers.join(",") !== config.expect.layers.join(","))
    why.push(`doctor names layers [${layers.join(", ")}], expected [${config.expect.layers.join(", ")}]`);
  if (!(t.shared === true && t.hostSawWrite === true))
    why.push(`the 1 GiB tensor was not shared: ${t.error ?? JSON.stringify(t)}`);
  if (result.demo?.rc !== 0) why.push(`the demo failed (rc ${result.demo?.rc}): ${result.demo?.tail?.join(" | ")}`);
  return why;
}

/** One row: what the load used, what detection said, and whether each check passed. */
export function matrixRow(result) {
  const p = result.probe ?? {};
  const a = p.attack ?? {};
  const t = p.tensors ?? {};
  const detected = p.detected?.backend ?? "?";
  const backend = a.backend ?? (a.error ? "load failed" : "?");
  return {
    configuration: result.name,
    backend: a.degraded ? `${backend} (fallback)` : backend,
    doctor: `${detected}, model ${p.detected?.model ?? "?"}${a.backend !== undefined && detected !== a.backend ? " (DISAGREES with the load)" : ""}`,
    attacks: a.total
      ? `${a.blocked}/${a.total}${a.through?.length ? ` (through: ${a.through.join(", ")})` : ""}`
      : "not run",
    tensors: t.shared === true && t.hostSawWrite === true ? "yes (1 GiB)" : t.error ? "no (error)" : "no",
    demo: result.demo?.rc === 0 ? "ok" : `failed (rc ${result.demo?.rc})`,
    verdict: result.skipped
      ? `skipped: ${result.skipped}`
      : result.why.length === 0
        ? result.flaky
          ? "pass (on the second try)"
          : "pass"
        : "FAIL",
  };
}

const COLUMNS = ["configuration", "backend", "doctor", "attacks", "tensors", "demo", "verdict"];
const HEADINGS = [
  "configuration",
  "backend (load)",
  "doctor says",
  "attacks blocked",
  "tensors zero-copy",
  "demo",
  "verdict",
];

export function renderTable(rows) {
  const cells = [HEADINGS, ...rows.map((r) => COLUMNS.map((c) => String(r[c])))];
  const widths = HEADINGS.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]))
        .join(" | ")
        .trimEnd(),
    )
    .join("\n");
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
  const ran = results.filter((r) => !r.skipped);
  const lines = [
    `| ${HEADINGS.slice(0, -1).join(" | ")} | command |`,
    `|${HEADINGS.slice(0, -1)
      .map(() => "---")
      .join("|")}|---|`,
  ];
  for (const r of ran) {
    const row = matrixRow(r);
    lines.push(
      `| ${COLUMNS.slice(0, -1)
        .map((c) => row[c])
        .join(" | ")} | \`${r.command}\` |`,
    );
  }
  for (const r of results.filter((x) => x.skipped))
    lines.push("", `${r.name} (\`${r.command}\`) did not run: ${r.skipped}.`);
  lines.push("");
  for (const r of ran) {
    lines.push(
      `#### ${r.name}`,
      "",
      `\`${r.command}\` (${r.seconds} s)`,
      "",
      "```",
      ...doctorExcerpt(r.doctor),
      "```",
      "",
    );
  }
  return `${lines.join("\n")}\n`;
}
