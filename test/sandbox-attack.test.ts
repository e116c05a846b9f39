// The attack suite: a real hostile extension under bwrap, under Landlock (forced) and with the sandbox disabled
// (the control, which proves each attack works), plus a degraded run with user namespaces blocked by a sysctl.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { SandboxOptions } from "../src/index.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { findExecutable } from "../src/sandbox/host.js";
import type { SandboxCapabilities } from "../src/sandbox/types.js";
import {
  ALL_BLOCKED,
  PLANTED_PTH,
  plantTargets,
  pthReadingSecret,
  ROOT_ONLY,
  runAttacks,
  SECRET_TEXT,
  sitePackages,
  succeeded,
  type Outcome,
  type Targets,
} from "./fixtures/sandbox/attacks.js";
import { fixture, makeManager, TEST_DIR } from "./helpers.js";

const run = promisify(execFile);
const MODULE = fixture("attack_ext");
const PROBE_PTH = "zz_pyisolate_probe.pth";

const BLOCKED = process.getuid?.() === 0 ? ALL_BLOCKED : ALL_BLOCKED.filter((name) => !ROOT_ONLY.includes(name));
/** What the kernel answers each attack, per backend: the mechanism that stopped it (docs/sandbox.md has the table). */
const EXPECTED_ERRORS: Record<"bwrap" | "landlock", Record<string, string>> = {
  bwrap: {
    read_home_secret: "FileNotFoundError",
    read_etc_secret: "FileNotFoundError",
    read_outside_secret: "FileNotFoundError",
    write_venv: "OSError",
    write_module: "OSError",
    connect_tcp: "ConnectionRefusedError",
    signal_host: "ProcessLookupError",
    read_host_environ: "FileNotFoundError",
    symlink_planted: "FileNotFoundError",
  },
  // Unix sockets of either kind, UDP and packet sockets: refused at socket() by the guest's seccomp filter (EACCES).
  landlock: {
    read_home_secret: "PermissionError",
    read_etc_secret: "PermissionError",
    read_outside_secret: "PermissionError",
    write_venv: "PermissionError",
    write_module: "PermissionError",
    connect_tcp: "PermissionError",
    signal_host: "PermissionError",
    read_host_environ: "PermissionError",
    symlink_planted: "PermissionError",
    list_home: "PermissionError",
    connect_unix_abstract: "PermissionError",
    connect_unix_path: "PermissionError",
    send_udp: "PermissionError",
    packet_socket: "PermissionError",
  },
};

interface Run {
  attacks: Record<string, Outcome>;
  /** After a restart: what a .pth planted by the first run did, and what the first run left outside. */
  afterRestart: {
    planted: string | null;
    persisted: Outcome;
    pthFiles: string[];
    pids: (number | undefined)[];
    reused: boolean;
  };
  /** What a .pth file the test planted in the venv could read at interpreter start. */
  pthSaw: string | null;
  sandbox: unknown;
}

let caps: SandboxCapabilities;
let targets: Targets;
const manager = makeManager();
const venvFiles: string[] = [];

before(async () => {
  caps = await detectSandbox();
  targets = await plantTargets();
});
after(async () => {
  await manager.close();
  for (const file of [...venvFiles, path.join(MODULE, "planted.py")]) rmSync(file, { force: true });
  if (targets?.canWriteEtc) rmSync(`${targets.etcSecret}.planted`, { force: true });
  await targets?.cleanup();
});

/** Load, attack, restart, look for what persisted; the venv's planted files are removed whatever happens. */
async function attackWith(sandbox: SandboxOptions): Promise<Run> {
  const first = await manager.load({ name: "attack_ext", modulePath: MODULE, sandbox });
  const site = sitePackages(first.environment.venvPath);
  venvFiles.push(path.join(site, PLANTED_PTH), path.join(site, PROBE_PTH));
  try {
    const attacks = await runAttacks(first, targets, MODULE);
    const info = first.sandbox;
    const firstPid = first.pid;
    await first.stop();
    // The test plants a .pth that reads the secret: it must run only after confinement.
    writeFileSync(path.join(site, PROBE_PTH), pthReadingSecret(targets.homeSecret));
    // What site processing will find at the next start (said in the control's message if the .pth does not run).
    const siteAtRestart = readdirSync(site).filter((entry) => entry.endsWith(".pth"));
    const second = await manager.load({ name: "attack_ext", modulePath: MODULE, sandbox });
    const seen = (await second.call("planted")) as { planted: string | null; pth_saw: string | null };
    const persisted = (await second.call("read_file", [path.join(targets.outside, "planted.txt")])) as Outcome;
    await second.stop();
    return {
      attacks,
      afterRestart: {
        planted: seen.planted,
        persisted,
        pthFiles: siteAtRestart,
        pids: [firstPid, second.pid],
        reused: second.environment.reused,
      },
      pthSaw: seen.pth_saw,
      sandbox: info,
    };
  } finally {
    for (const file of [
      ...venvFiles,
      path.join(MODULE, "planted.py"),
      path.join(targets.outside, "planted.txt"),
      ...(targets.canWriteEtc ? [`${targets.etcSecret}.planted`] : []),
    ]) {
      rmSync(file, { force: true });
    }
  }
}

function table(r: Run): string {
  return Object.entries(r.attacks)
    .map(([name, [kind]]) => `${name}: ${kind}`)
    .join(", ");
}

describe("control: with the sandbox disabled every attack works", () => {
  it("reads, lists, writes, persists, connects, signals and escapes", async (t) => {
    const r = await attackWith({ mode: "disabled" });
    t.diagnostic(table(r));
    for (const name of BLOCKED)
      assert.ok(
        succeeded(name, r.attacks[name]!, targets),
        `${name} should work unsandboxed: ${JSON.stringify(r.attacks[name])}`,
      );
    assert.deepEqual(r.attacks.read_home_secret, ["ok", SECRET_TEXT]);
    assert.deepEqual(r.attacks.symlink_planted, ["ok", SECRET_TEXT]);
    assert.equal(r.attacks.write_writable![0], "ok");
    assert.equal(r.attacks.connect_unix_path![0], "ok");
    assert.deepEqual(r.attacks.socketpair, ["ok", "ping"]);
    assert.equal(
      r.afterRestart.planted,
      "1",
      `a .pth planted in the venv runs at the next start: ${JSON.stringify(r.afterRestart)}`,
    );
    assert.deepEqual(r.afterRestart.persisted, ["ok", "planted by attack_ext"]);
    assert.equal(r.pthSaw, SECRET_TEXT);
    assert.deepEqual(r.sandbox, { backend: "none", model: undefined, degraded: false });
  });
});

for (const backend of ["bwrap", "landlock"] as const) {
  describe(`sandboxed by ${backend} (mode "required", backend "${backend}")`, () => {
    it("stops every attack; the writable folder still works", async (t) => {
      if (!caps) caps = await detectSandbox();
      if (backend === "bwrap" && caps.backend !== "bwrap")
        return t.skip(`bwrap cannot run with every namespace here (model ${caps.model})`);
      if (backend === "landlock" && caps.landlockAbi < 6)
        return t.skip(`Landlock ABI ${caps.landlockAbi} < 6: signals and abstract sockets are not scoped`);
      const r = await attackWith({ mode: "required", backend, writablePaths: [targets.writable] });
      t.diagnostic(table(r));
      assert.deepEqual(r.sandbox, { backend, model: caps.model, degraded: false });
      for (const name of BLOCKED)
        assert.ok(
          !succeeded(name, r.attacks[name]!, targets),
          `${name} got through ${backend}: ${JSON.stringify(r.attacks[name])}`,
        );
      for (const [name, kind] of Object.entries(EXPECTED_ERRORS[backend]))
        assert.equal(r.attacks[name]![0], kind, `${name}: ${JSON.stringify(r.attacks[name])}`);
      assert.equal(r.attacks.write_writable![0], "ok", JSON.stringify(r.attacks.write_writable));
      assert.equal(r.afterRestart.planted, null, "nothing planted in the venv survives to the next start");
      assert.notEqual(r.afterRestart.persisted[0], "ok");
      assert.ok(!existsSync(path.join(targets.outside, "planted.txt")));
      assert.ok(r.pthSaw?.startsWith("denied"), `a .pth file ran before confinement: ${r.pthSaw}`);
      if (backend === "bwrap")
        assert.equal(r.attacks.connect_unix_path![0], "FileNotFoundError", "not in its filesystem");
      if (backend === "landlock") {
        assert.match(
          r.attacks.connect_unix_path![1] as string,
          /sandbox\.unixSockets: true/,
          "the refusal says what the host can change",
        );
        assert.match(r.attacks.send_udp![1] as string, /sandbox\.network: true/);
      }
      // asyncio's self-pipe and multiprocessing's duplex pipes are Unix stream pairs: the filter lets them through.
      assert.deepEqual(r.attacks.socketpair, ["ok", "ping"]);
    });
  });
}

describe("Landlock with the network or the GPU granted", () => {
  const call = (ext: Awaited<ReturnType<typeof manager.load>>, method: string, ...args: unknown[]) =>
    ext.call(method, args) as Promise<Outcome>;

  it("network: true reaches the host over TCP and UDP; a Unix socket by path stays refused", async (t) => {
    if (!caps) caps = await detectSandbox();
    if (caps.landlockAbi < 6) return t.skip(`Landlock ABI ${caps.landlockAbi} < 6`);
    const ext = await manager.load({
      name: "attack_ext",
      modulePath: MODULE,
      sandbox: { mode: "required", backend: "landlock", network: true },
    });
    try {
      assert.deepEqual(await call(ext, "connect_tcp", "127.0.0.1", targets.tcpPort), ["ok", "connected"]);
      assert.deepEqual(await call(ext, "send_udp", "127.0.0.1", targets.udpPort, "udp-granted"), [
        "ok",
        "ack:udp-granted",
      ]);
      assert.equal(
        (await call(ext, "connect_unix", targets.unixPath))[0],
        "PermissionError",
        "the network is IP, not the host's local services",
      );
      assert.deepEqual(await call(ext, "socketpair_echo"), ["ok", "ping"]);
    } finally {
      await ext.stop();
    }
  });

  it("unixSockets: true lets multiprocessing's Manager run, and a Unix socket by path is reachable again", async (t) => {
    if (!caps) caps = await detectSandbox();
    if (caps.landlockAbi < 6) return t.skip(`Landlock ABI ${caps.landlockAbi} < 6`);
    const refused = await manager.load({
      name: "attack_ext",
      modulePath: MODULE,
      sandbox: { mode: "required", backend: "landlock" },
    });
    try {
      // The server process cannot listen (PermissionError there), so the parent reads EOF from it.
      assert.ok(
        ["PermissionError", "EOFError"].includes((await call(refused, "manager_roundtrip"))[0]),
        "without it the Manager cannot run",
      );
    } finally {
      await refused.stop();
    }
    const ext = await manager.load({
      name: "attack_ext",
      modulePath: MODULE,
      sandbox: { mode: "required", backend: "landlock", unixSockets: true },
    });
    try {
      assert.deepEqual(await call(ext, "manager_roundtrip"), ["ok", 42]);
      assert.deepEqual(await call(ext, "connect_unix", targets.unixPath), ["ok", "connected"]);
      assert.equal(
        (await call(ext, "send_udp", "127.0.0.1", targets.udpPort, "udp-unix"))[0],
        "PermissionError",
        "the network stays off",
      );
    } finally {
      await ext.stop();
    }
  });

  it("gpu: true lets socket(AF_UNIX) through (the CUDA driver's daemons): a Unix socket by path is reachable again, as docs/sandbox.md says", async (t) => {
    if (!caps) caps = await detectSandbox();
    if (caps.landlockAbi < 6) return t.skip(`Landlock ABI ${caps.landlockAbi} < 6`);
    const ext = await manager.load({
      name: "attack_ext",
      modulePath: MODULE,
      sandbox: { mode: "required", backend: "landlock", gpu: true },
    });
    try {
      assert.deepEqual(await call(ext, "connect_unix", targets.unixPath), ["ok", "connected"]);
      assert.equal(
        (await call(ext, "send_udp", "127.0.0.1", targets.udpPort, "udp-gpu"))[0],
        "PermissionError",
        "the network stays off",
      );
    } finally {
      await ext.stop();
    }
  });
});

describe("degraded: user namespaces blocked by user.max_user_namespaces = 0", () => {
  it("falls back to bwrap without a user namespace; files, network and processes stay out of reach", async (t) => {
    const unshare = await findExecutable("unshare");
    if (!unshare)
      return t.skip("unshare (util-linux) is not installed: cannot make the user namespace this test needs");
    const probe = await run(unshare, ["--user", "--map-root-user", "--mount", "true"]).then(
      () => undefined,
      (e: Error) => e.message,
    );
    if (probe) return t.skip(`this host cannot make a user namespace for the test: ${probe}`);
    const child = path.join(TEST_DIR, "fixtures", "sandbox", "degraded-attack-child.ts");
    const { stdout } = await run(
      unshare,
      [
        "--user",
        "--map-root-user",
        "--mount",
        process.execPath,
        "--import",
        "tsx",
        child,
        JSON.stringify({ ...targets, hostPid: process.pid }),
      ],
      {
        cwd: path.dirname(TEST_DIR),
        timeout: 90_000,
      },
    );
    const out = JSON.parse(stdout) as {
      sandbox: { backend: string; degraded: boolean };
      attacks: Record<string, Outcome>;
      warnings: string[];
    };
    t.diagnostic(
      Object.entries(out.attacks)
        .map(([n, [k]]) => `${n}: ${k}`)
        .join(", "),
    );
    assert.deepEqual(out.sandbox, { backend: "bwrap-degraded", model: "sysctl", degraded: true });
    assert.equal(out.warnings.length, 1, `one warning per manager: ${out.warnings.join("\n")}`);
    assert.match(out.warnings[0]!, /user\.max_user_namespaces/, "the warning carries the remedy");
    for (const name of BLOCKED)
      assert.ok(
        !succeeded(name, out.attacks[name]!, targets),
        `${name} got through degraded bwrap: ${JSON.stringify(out.attacks[name])}`,
      );
    assert.equal(out.attacks.write_writable![0], "ok");
  });
});
