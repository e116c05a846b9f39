// The bwrap policy builder: argv snapshots per capability set and option, and invariants no policy may break.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../src/errors.js";
import { buildBwrapArgs, PRIVATE_HOME, wrapWithBwrap, type BwrapPaths } from "../src/sandbox/bwrap-policy.js";
import { buildLandlockRules, encodeLandlockRules } from "../src/sandbox/landlock-policy.js";
import {
  ALL_NAMESPACES,
  DEFAULT_SANDBOX_POLICY,
  type NamespaceSupport,
  type SandboxPolicy,
} from "../src/sandbox/types.js";

const SNAPSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "sandbox", "snapshots");
const UPDATE = process.env.UPDATE_SNAPSHOTS === "1";

const PATHS: BwrapPaths = {
  pythonInstall: "/opt/python/3.11.7",
  venv: "/srv/app/venvs/ext",
  extensionDir: "/srv/app/extensions/ext",
  runtimeDir: "/srv/app/node_modules/pyisolate/python",
  systemLinks: { "/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64" },
  gpuDevices: ["/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidiactl"],
};
const DEGRADED: NamespaceSupport = { ...ALL_NAMESPACES, user: false };

function policy(over: Partial<SandboxPolicy> = {}): SandboxPolicy {
  return { ...DEFAULT_SANDBOX_POLICY, ...over };
}

const VARIANTS: Record<string, { policy: SandboxPolicy; ns: NamespaceSupport; paths?: BwrapPaths }> = {
  "full-default": { policy: policy(), ns: ALL_NAMESPACES },
  "degraded-default": { policy: policy(), ns: DEGRADED },
  "full-network": { policy: policy({ network: true }), ns: ALL_NAMESPACES },
  "full-gpu": { policy: policy({ gpu: true }), ns: ALL_NAMESPACES },
  "full-writable": {
    policy: policy({
      writablePaths: ["/srv/app/data/ext", "/srv/app/extensions/ext/cache"],
      readonlyPaths: ["/srv/models"],
    }),
    ns: ALL_NAMESPACES,
    paths: { ...PATHS, home: "/srv/app/homes/ext" },
  },
  "python-under-usr": {
    policy: policy(),
    ns: ALL_NAMESPACES,
    paths: { ...PATHS, pythonInstall: "/usr", systemLinks: {} },
  },
  // What a load really gets: every host folder pinned by the host and bound by descriptor (fd 6 on), never by name.
  "full-pinned": {
    policy: policy({ writablePaths: ["/srv/app/data/ext"], readonlyPaths: ["/srv/models"] }),
    ns: ALL_NAMESPACES,
    paths: {
      ...PATHS,
      home: "/srv/app/homes/ext",
      pinned: {
        "/opt/python/3.11.7": 5,
        "/srv/app/venvs/ext": 6,
        "/srv/app/node_modules/pyisolate/python": 7,
        "/srv/app/extensions/ext": 8,
        "/srv/models": 9,
        "/srv/app/homes/ext": 10,
        "/srv/app/data/ext": 11,
      },
    },
  },
};

/** Every (source, dest) a mount flag names. */
function mounts(args: string[]): { flag: string; src: string; dest: string }[] {
  const out: { flag: string; src: string; dest: string }[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    // A descriptor bind (--ro-bind-fd FD DEST) binds the host object pinned at DEST: DEST is its source path too.
    if (/^--(ro-|dev-)?bind(-try)?$/.test(flag)) out.push({ flag, src: args[i + 1]!, dest: args[i + 2]! });
    if (/^--(ro-)?bind-fd$/.test(flag)) out.push({ flag, src: args[i + 2]!, dest: args[i + 2]! });
  }
  return out;
}

describe("bwrap policy snapshots", () => {
  for (const [name, v] of Object.entries(VARIANTS)) {
    it(name, () => {
      const args = buildBwrapArgs(v.policy, v.paths ?? PATHS, v.ns);
      const file = path.join(SNAPSHOTS, `${name}.json`);
      if (UPDATE) writeFileSync(file, `${JSON.stringify(args, null, 1)}\n`);
      // A missing snapshot fails: writing it here would compare the argv with itself.
      assert.ok(
        existsSync(file),
        `no snapshot ${path.relative(process.cwd(), file)}: review the argv, then UPDATE_SNAPSHOTS=1`,
      );
      assert.deepEqual(args, JSON.parse(readFileSync(file, "utf8")), `argv changed: review, then UPDATE_SNAPSHOTS=1`);
    });
  }
});

describe("bwrap policy snapshot files", () => {
  it("each snapshot file belongs to a variant (a renamed variant leaves no stale file behind)", () => {
    const names = readdirSync(SNAPSHOTS)
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -".json".length));
    assert.deepEqual(names.sort(), Object.keys(VARIANTS).sort());
  });
});

describe("bwrap policy invariants", () => {
  const all = Object.entries(VARIANTS).map(([name, v]) => ({
    name,
    args: buildBwrapArgs(v.policy, v.paths ?? PATHS, v.ns),
  }));

  it("never binds the host's /, /tmp, /home, /root or all of /etc", () => {
    for (const { name, args } of all) {
      for (const m of mounts(args)) {
        for (const forbidden of ["/", "/tmp", "/home", "/root", "/etc", "/var", "/run", "/proc", "/sys"]) {
          assert.notEqual(m.src, forbidden, `${name}: ${m.flag} ${m.src}`);
        }
        assert.ok(!m.src.startsWith("/tmp/"), `${name}: host /tmp content bound: ${m.src}`);
        assert.ok(!/^\/etc\/(passwd|shadow|group|gshadow|sudoers|ssh)/.test(m.src), `${name}: ${m.src}`);
      }
      // /tmp is a private tmpfs in every variant.
      assert.ok(args.join(" ").includes("--tmpfs /tmp"), name);
    }
  });

  it("binds the interpreter, venv, runtime and extension read-only; only named paths writable", () => {
    const args = buildBwrapArgs(VARIANTS["full-writable"]!.policy, VARIANTS["full-writable"]!.paths!, ALL_NAMESPACES);
    const m = mounts(args);
    const ro = m.filter((x) => x.flag === "--ro-bind").map((x) => x.src);
    const rw = m.filter((x) => x.flag === "--bind").map((x) => x.src);
    assert.deepEqual(ro, [
      "/opt/python/3.11.7",
      "/srv/app/venvs/ext",
      "/srv/app/node_modules/pyisolate/python",
      "/srv/app/extensions/ext",
      "/srv/models",
    ]);
    assert.deepEqual(rw, ["/srv/app/homes/ext", "/srv/app/data/ext", "/srv/app/extensions/ext/cache"]);
    // A writable path inside the read-only extension folder must come after it to win.
    assert.ok(args.lastIndexOf("/srv/app/extensions/ext/cache") > args.indexOf("/srv/app/extensions/ext"));
  });

  it("isolates the network unless network: true", () => {
    assert.ok(buildBwrapArgs(policy(), PATHS).includes("--unshare-net"));
    const open = buildBwrapArgs(policy({ network: true }), PATHS);
    assert.ok(!open.includes("--unshare-net"));
    assert.ok(open.includes("/etc/resolv.conf"), "name resolution files come with the network");
    assert.ok(!buildBwrapArgs(policy(), PATHS).includes("/etc/resolv.conf"));
  });

  it("binds GPU devices and /sys parts only with gpu: true", () => {
    const off = buildBwrapArgs(policy(), PATHS);
    assert.ok(
      !off.some((a) => a.startsWith("/dev/nvidia") || a === "/dev/dri" || a === "/dev/dxg" || a === "/sys/bus/pci"),
    );
    const on = buildBwrapArgs(policy({ gpu: true }), PATHS);
    for (const dev of ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"])
      assert.ok(
        mounts(on).some((m) => m.flag === "--dev-bind" && m.src === dev),
        dev,
      );
    assert.ok(mounts(on).some((m) => m.flag === "--dev-bind-try" && m.src === "/dev/dxg"));
    assert.ok(mounts(on).some((m) => m.flag === "--ro-bind-try" && m.src === "/sys/bus/pci"));
  });

  it("full mode makes every namespace; degraded mode drops only the user namespace", () => {
    const full = buildBwrapArgs(policy(), PATHS, ALL_NAMESPACES);
    for (const f of [
      "--unshare-user",
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-uts",
      "--unshare-cgroup-try",
      "--unshare-net",
      "--die-with-parent",
      "--new-session",
    ])
      assert.ok(full.includes(f), f);
    const degraded = buildBwrapArgs(policy(), PATHS, DEGRADED);
    assert.ok(!degraded.includes("--unshare-user"));
    for (const f of ["--unshare-pid", "--unshare-net", "--cap-drop", "--die-with-parent", "--new-session", "--tmpfs"])
      assert.ok(degraded.includes(f), f);
  });

  it("gives a private HOME and TMPDIR", () => {
    const args = buildBwrapArgs(policy(), PATHS).join(" ");
    assert.ok(args.includes(`--dir ${PRIVATE_HOME} --setenv HOME ${PRIVATE_HOME}`));
    assert.ok(args.includes("--setenv TMPDIR /tmp"));
  });

  it("refuses dangerous config paths by name, and network: false without a network namespace", () => {
    assert.throws(
      () => buildBwrapArgs(policy({ writablePaths: ["/home"] }), PATHS),
      (e: unknown) => e instanceof ConfigError && /"\/home"/.test(e.message) && e.key === "sandbox.writablePaths",
    );
    assert.throws(
      () => buildBwrapArgs(policy({ readonlyPaths: ["/etc/ssh"] }), PATHS),
      (e: unknown) => e instanceof ConfigError && /\/etc\/ssh/.test(e.message),
    );
    assert.throws(() => buildBwrapArgs(policy({ writablePaths: ["relative/dir"] }), PATHS), ConfigError);
    assert.throws(
      () => buildBwrapArgs(policy(), PATHS, { ...DEGRADED, net: false }),
      (e: unknown) => e instanceof ConfigError && e.key === "sandbox.network",
    );
    assert.doesNotThrow(() => buildBwrapArgs(policy({ network: true }), PATHS, { ...DEGRADED, net: false }));
  });

  it("wraps a command after --", () => {
    const cmd = wrapWithBwrap("/usr/bin/bwrap", ["--unshare-pid"], ["/venv/bin/python", "-I", "boot.py"]);
    assert.deepEqual(cmd, {
      command: "/usr/bin/bwrap",
      args: ["--unshare-pid", "--", "/venv/bin/python", "-I", "boot.py"],
    });
  });
});

describe("Landlock rules with gpu: true", () => {
  const paths = {
    pythonInstall: ["/opt/python/3.11.7"],
    venv: "/srv/app/venvs/ext",
    extensionDir: "/srv/app/extensions/ext",
    runtimeDir: "/srv/rt",
    home: "/tmp/p/home",
    tmpdir: "/tmp/p/tmp",
    gpuDevices: PATHS.gpuDevices,
  };

  it("grant the device nodes, the process's own /proc/self (CUDA writes there at init: Error 304 without it, on an H200) and /dev/shm (torch's CUDA IPC counter file)", () => {
    const on = buildLandlockRules(policy({ gpu: true }), paths);
    for (const p of [...PATHS.gpuDevices!, "/dev/dri", "/proc/self", "/dev/shm"]) assert.ok(on.writable.includes(p), p);
    assert.ok(!on.writable.includes("/proc") && !on.readOnly.includes("/proc"), "never the host's /proc");
    const off = buildLandlockRules(policy(), paths);
    assert.ok(!off.writable.some((p) => p.startsWith("/proc") || p.startsWith("/dev/nvidia") || p === "/dev/shm"));
  });

  it("let the seccomp filter allow socket(AF_UNIX) (nvidia-persistenced, MPS); without the GPU it is refused, with the network or not", () => {
    assert.equal(buildLandlockRules(policy({ gpu: true }), paths).unixSockets, true);
    assert.equal(buildLandlockRules(policy(), paths).unixSockets, false);
    assert.equal(buildLandlockRules(policy({ network: true }), paths).unixSockets, false);
    assert.equal(
      buildLandlockRules(policy({ unixSockets: true }), paths).unixSockets,
      true,
      "asked for by the host application",
    );
    const json = JSON.parse(encodeLandlockRules(buildLandlockRules(policy({ network: true }), paths))) as Record<
      string,
      unknown
    >;
    assert.deepEqual([json.network, json.unix_sockets], [true, false], "the flags travel in the rules the guest reads");
  });

  it("let torch read the CPU's features in /proc/cpuinfo, and nothing else of /proc", () => {
    const rules = buildLandlockRules(policy(), paths);
    assert.ok(rules.readOnly.includes("/proc/cpuinfo"));
    assert.deepEqual(
      [...rules.readOnly, ...rules.writable].filter((p) => p.startsWith("/proc")),
      ["/proc/cpuinfo"],
    );
  });

  it("ask for the socket filter only on the architectures it knows", () => {
    assert.equal(buildLandlockRules(policy(), paths, "x64").socketFilter, true);
    assert.equal(buildLandlockRules(policy(), paths, "arm64").socketFilter, true);
    assert.equal(buildLandlockRules(policy(), paths, "ppc64").socketFilter, false);
    const json = JSON.parse(encodeLandlockRules(buildLandlockRules(policy(), paths, "riscv64"))) as Record<
      string,
      unknown
    >;
    assert.equal(json.socket_filter, false, "the guest reads it");
  });
});
