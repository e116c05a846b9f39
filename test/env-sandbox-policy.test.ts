// The install sandbox as data: the argv it builds, the installer config it reads, the environment it passes.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../src/errors.js";
import { chooseInstallBackend, installEnv, installCacheDir } from "../src/env/install/sandbox.js";
import {
  insidePath,
  localPathsIn,
  pipConfSources,
  readInstallerConfig,
  sourceRoot,
  uvTomlSources,
} from "../src/env/install/config.js";
import { toJob } from "../src/env/types.js";
import {
  buildInstallLandlockRules,
  encodeInstallLandlockRules,
  wrapWithConfineExec,
} from "../src/env/install/landlock-rules.js";
import { buildInstallBwrapArgs, INSTALL_HOME, type InstallSandboxPolicy } from "../src/env/install/bwrap-policy.js";
import { ALL_NAMESPACES, type SandboxCapabilities } from "../src/sandbox/types.js";
import { tempRoot } from "./fixtures/env/helpers.js";

const POLICY: InstallSandboxPolicy = {
  network: true,
  buildDir: "/srv/venvs/.build-ext-0123456789ab",
  cacheDir: "/srv/venvs/.cache/ext/uv",
  readonlyPaths: ["/home/alice/.pyenv/versions/3.11.7", "/usr/local/lib/python3.11", "/opt/pypi", "/srv/wheels"],
  configFiles: [{ host: "/home/alice/.config/pip/pip.conf", inside: `${INSTALL_HOME}/.config/pip/pip.conf` }],
  systemLinks: { "/bin": "usr/bin", "/lib": "usr/lib" },
};

/** Every (flag, source, dest) a mount flag names. */
function mounts(args: string[]): { flag: string; src: string; dest: string }[] {
  const out: { flag: string; src: string; dest: string }[] = [];
  for (let i = 0; i < args.length; i++) {
    if (/^--(ro-|dev-)?bind(-try)?$/.test(args[i]!))
      out.push({ flag: args[i]!, src: args[i + 1]!, dest: args[i + 2]! });
  }
  return out;
}

describe("install sandbox argv", () => {
  it("writes only the build folder and the cache; everything else bound is read-only", () => {
    const args = buildInstallBwrapArgs(POLICY);
    const writable = mounts(args).filter((m) => m.flag === "--bind" || m.flag === "--bind-try");
    assert.deepEqual(
      writable.map((m) => m.dest),
      [POLICY.buildDir, POLICY.cacheDir],
    );
    const ro = mounts(args)
      .filter((m) => m.flag.startsWith("--ro-bind"))
      .map((m) => m.dest);
    for (const p of POLICY.readonlyPaths) {
      if (p.startsWith("/usr/")) assert.ok(!ro.includes(p), `${p} is inside /usr, not bound twice`);
      else assert.ok(ro.includes(p), `${p} is bound read-only`);
    }
    // The writable binds come after every read-only one, so that they win where they nest.
    const lastRo = args.lastIndexOf("--ro-bind-try");
    assert.ok(args.indexOf("--bind") > lastRo);
  });

  it("shows nothing of the host's home but the Python install and the user's pip.conf, moved into the private HOME", () => {
    const args = buildInstallBwrapArgs(POLICY);
    const fromHome = mounts(args).filter((m) => m.src.startsWith("/home/"));
    assert.deepEqual(
      fromHome.map((m) => [m.src, m.dest]),
      [
        ["/home/alice/.pyenv/versions/3.11.7", "/home/alice/.pyenv/versions/3.11.7"],
        ["/home/alice/.config/pip/pip.conf", "/tmp/home/.config/pip/pip.conf"],
      ],
    );
    assert.ok(!mounts(args).some((m) => ["/", "/home", "/root", "/tmp", "/etc"].includes(m.src)));
    assert.deepEqual(
      args.slice(
        args.indexOf("--tmpfs", args.indexOf("/dev/shm")),
        args.indexOf("--tmpfs", args.indexOf("/dev/shm")) + 2,
      ),
      ["--tmpfs", "/tmp"],
    );
    const home = args.indexOf("HOME");
    assert.equal(args[home + 1], INSTALL_HOME);
  });

  it("shares the network (registries) by default; network: false gets an empty namespace", () => {
    const on = buildInstallBwrapArgs(POLICY);
    assert.ok(!on.includes("--unshare-net"));
    assert.ok(on.includes("/etc/resolv.conf"), "name resolution for the registries");
    const off = buildInstallBwrapArgs({ ...POLICY, network: false });
    assert.ok(off.includes("--unshare-net"));
    assert.ok(!off.includes("/etc/resolv.conf"));
  });

  it("keeps the lifetime flags, all namespaces it can, the system config files, and starts in the build folder", () => {
    const args = buildInstallBwrapArgs(POLICY, ALL_NAMESPACES);
    for (const f of ["--die-with-parent", "--new-session", "--unshare-user", "--unshare-pid", "--unshare-ipc"])
      assert.ok(args.includes(f), f);
    assert.deepEqual(args.slice(-2), ["--chdir", POLICY.buildDir]);
    for (const f of ["/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/etc/uv/uv.toml"]) assert.ok(args.includes(f), f);
    const degraded = buildInstallBwrapArgs(POLICY, { ...ALL_NAMESPACES, user: false });
    assert.ok(!degraded.includes("--unshare-user"));
    assert.ok(degraded.includes("--bind"), "filesystem isolation stays on");
  });

  it("refuses relative paths", () => {
    assert.throws(() => buildInstallBwrapArgs({ ...POLICY, cacheDir: "cache" }), ConfigError);
    assert.throws(() => buildInstallBwrapArgs({ ...POLICY, readonlyPaths: ["opt/pypi"] }), ConfigError);
  });
});

describe("installer config", () => {
  const root = tempRoot("pyisolate-env-sbxcfg-");
  after(() => root.remove());

  it("finds local sources in pip.conf, uv.toml and values", () => {
    const conf = [
      "[global]",
      "find-links = /opt/wheels",
      "extra-index-url = file:///opt/pypi/simple file:///opt/pypi-more/simple",
      "    https://example.org/simple",
      "    file:///srv/idx/simple",
      "constraint = /etc/xdg/pip/constraints.txt",
      "timeout = 60",
      "[install]",
      "index_url = https://example.org/simple",
    ].join("\n");
    assert.deepEqual(pipConfSources(conf), [
      "/opt/wheels",
      "/opt/pypi/simple",
      "/opt/pypi-more/simple",
      "/srv/idx/simple",
      "/etc/xdg/pip/constraints.txt",
    ]);
    const toml =
      'find-links = ["/srv/wheels"]\n[[index]]\nname = "local"\nurl = "file:///srv/index/simple"\n[[index]]\nurl = "https://pypi.org/simple"\n';
    assert.deepEqual(uvTomlSources(toml), ["/srv/wheels", "/srv/index/simple"]);
    assert.deepEqual(localPathsIn("local=file:///srv/a https://x/simple /srv/b file:///srv/c#frag"), [
      "/srv/a",
      "/srv/b",
      "/srv/c",
    ]);
    assert.equal(sourceRoot("/opt/pypi/simple"), "/opt/pypi");
    assert.equal(sourceRoot("/srv/wheels"), "/srv/wheels");
    assert.equal(
      insidePath("/home/alice/.config/pip/pip.conf", "/home/alice", "/tmp/home"),
      "/tmp/home/.config/pip/pip.conf",
    );
    assert.equal(insidePath("/etc/pip.conf", "/home/alice", "/tmp/home"), "/etc/pip.conf");
  });

  it("maps the user's files into the private HOME and collects every local source: config, PIP_*/UV_* and the spec", async () => {
    const home = path.join(root.dir, "home");
    mkdirSync(path.join(home, ".config", "pip"), { recursive: true });
    mkdirSync(path.join(home, ".config", "uv"), { recursive: true });
    writeFileSync(path.join(home, ".config", "pip", "pip.conf"), "[global]\nfind-links = /srv/pip-wheels\n");
    writeFileSync(path.join(home, ".config", "uv", "uv.toml"), 'index-url = "file:///srv/uv-index/simple"\n');
    const system = path.join(root.dir, "etc-pip.conf");
    writeFileSync(system, "[global]\nextra-index-url = file:///srv/global/simple\n");
    const env = {
      HOME: home,
      PIP_FIND_LINKS: "/srv/env-wheels",
      UV_EXTRA_INDEX_URL: "file:///srv/uv-env/simple",
      PIP_TIMEOUT: "/not/a/source",
    };
    const index = {
      indexUrl: "file:///srv/spec/simple",
      extraIndexUrls: ["https://example.org/simple"],
      findLinks: ["/srv/spec-wheels"],
    };
    const cfg = await readInstallerConfig(env, index, home, INSTALL_HOME, [system]);
    assert.deepEqual(cfg.files, [
      { host: path.join(home, ".config", "pip", "pip.conf"), inside: "/tmp/home/.config/pip/pip.conf" },
      { host: path.join(home, ".config", "uv", "uv.toml"), inside: "/tmp/home/.config/uv/uv.toml" },
    ]);
    assert.deepEqual(cfg.localSources.sort(), [
      "/srv/env-wheels",
      "/srv/global",
      "/srv/pip-wheels",
      "/srv/spec",
      "/srv/spec-wheels",
      "/srv/uv-env",
      "/srv/uv-index",
    ]);
  });

  it("PIP_CONFIG_FILE replaces the user files and is rewritten to its inside path", async () => {
    const home = path.join(root.dir, "home2");
    mkdirSync(path.join(home, "conf"), { recursive: true });
    writeFileSync(path.join(home, "conf", "my-pip.conf"), "[global]\nfind-links = /srv/mine\n");
    const env = { HOME: home, PIP_CONFIG_FILE: path.join(home, "conf", "my-pip.conf") };
    const cfg = await readInstallerConfig(
      env,
      { indexUrl: null, extraIndexUrls: [], findLinks: [] },
      home,
      INSTALL_HOME,
      [],
    );
    assert.deepEqual(cfg.files, [{ host: env.PIP_CONFIG_FILE, inside: "/tmp/home/conf/my-pip.conf" }]);
    assert.deepEqual(cfg.env, { PIP_CONFIG_FILE: "/tmp/home/conf/my-pip.conf" });
    assert.deepEqual(cfg.localSources, ["/srv/mine"]);
  });
});

describe("install environment and options", () => {
  it("passes an allow-list of the host's variables and sets the cache, HOME and TMPDIR", () => {
    const host = {
      PATH: "/usr/bin",
      LANG: "C.UTF-8",
      HTTPS_PROXY: "http://proxy:3128",
      PIP_FIND_LINKS: "/opt/wheels",
      PIP_CACHE_DIR: "/root/.cache/pip",
      AWS_SECRET_ACCESS_KEY: "hunter2",
      GITHUB_TOKEN: "ghp_x",
      PYTHONPATH: "/root/evil",
      XDG_CONFIG_HOME: "/root/.config",
    };
    const pip = installEnv(host, "pip", "/v/.cache/e/pip", {});
    assert.deepEqual(pip, {
      PATH: "/usr/bin",
      LANG: "C.UTF-8",
      HTTPS_PROXY: "http://proxy:3128",
      PIP_FIND_LINKS: "/opt/wheels",
      HOME: INSTALL_HOME,
      TMPDIR: "/tmp",
      PIP_CACHE_DIR: "/v/.cache/e/pip",
    });
    const uv = installEnv(host, "uv", "/v/.cache/e/uv", { UV_CONFIG_FILE: "/tmp/home/uv.toml" });
    assert.equal(uv.UV_CACHE_DIR, "/v/.cache/e/uv");
    assert.equal(uv.UV_LINK_MODE, "copy");
    assert.equal(uv.UV_CONFIG_FILE, "/tmp/home/uv.toml");
    assert.equal(uv.AWS_SECRET_ACCESS_KEY, undefined);
    assert.equal(installCacheDir("/v", "e", "uv"), "/v/.cache/e/uv");
  });

  it("validates the sandbox option and defaults to required", () => {
    const spec = { name: "e", venvRoot: "/v", dependencies: [], runtimeVersion: "0" };
    assert.deepEqual(toJob(spec).sandbox, { mode: "required" });
    assert.deepEqual(toJob({ ...spec, sandbox: { mode: "preferred", network: false } }).sandbox, {
      mode: "preferred",
      network: false,
    });
    assert.throws(
      () => toJob({ ...spec, sandbox: { mode: "off" as "disabled" } }),
      (e: ConfigError) => e.key === "sandbox.mode",
    );
    assert.throws(
      () => toJob({ ...spec, sandbox: { mode: "required", network: "yes" as unknown as boolean } }),
      /sandbox\.network/,
    );
    assert.throws(() => toJob({ ...spec, sandbox: { mode: "required", bwrapPath: "bwrap" } }), /sandbox\.bwrapPath/);
    assert.throws(
      () => toJob({ ...spec, sandbox: { mode: "required", backend: "firejail" as "bwrap" } }),
      (e: ConfigError) => e.key === "sandbox.backend",
    );
  });

  it("HOME and TMPDIR can be the host folders a Landlock install gets", () => {
    const env = installEnv(
      { PATH: "/usr/bin" },
      "pip",
      "/v/.cache/e/pip",
      {},
      { home: "/tmp/pyisolate-install-x/home", tmp: "/tmp/pyisolate-install-x/tmp" },
    );
    assert.equal(env.HOME, "/tmp/pyisolate-install-x/home");
    assert.equal(env.TMPDIR, "/tmp/pyisolate-install-x/tmp");
  });
});

describe("install backend choice (pure)", () => {
  const NONE = { user: false, pid: false, net: false, ipc: false, uts: false, cgroup: false };
  const caps = (over: Partial<SandboxCapabilities>): SandboxCapabilities => ({
    platform: "linux",
    model: "none",
    backend: "bwrap",
    bwrap: { path: "/usr/bin/bwrap", version: "0.9.0" },
    namespaces: { ...ALL_NAMESPACES },
    landlockAbi: 6,
    inContainer: false,
    probes: [],
    gaps: [],
    ...over,
  });
  const gap = {
    id: "userns-apparmor",
    problem: "AppArmor restricts unprivileged user namespaces",
    remedy: ["sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"],
  };
  /** Ubuntu 24.04: bwrap is installed, but the user namespace it needs is refused; the kernel has Landlock. */
  const UBUNTU = caps({ model: "apparmor", backend: "landlock", namespaces: NONE, gaps: [gap] });

  it("auto takes bwrap where it works, and Landlock (saying why) where it does not", () => {
    assert.deepEqual(chooseInstallBackend({}, caps({})), { kind: "bwrap" });
    assert.deepEqual(
      chooseInstallBackend({}, caps({ backend: "bwrap-degraded", namespaces: { ...ALL_NAMESPACES, user: false } })),
      { kind: "bwrap-degraded" },
    );
    const ll = chooseInstallBackend({}, UBUNTU);
    assert.equal(ll.kind, "landlock");
    assert.match((ll as { note: string }).note, /AppArmor restricts.*Landlock instead/);
  });

  it("a named backend is taken only where it can run", () => {
    assert.deepEqual(chooseInstallBackend({ backend: "landlock" }, caps({})), { kind: "landlock" });
    const bwrap = chooseInstallBackend({ backend: "bwrap" }, UBUNTU);
    assert.equal(bwrap.kind, "none");
    assert.match((bwrap as { reason: string }).reason, /needs bubblewrap, and bubblewrap cannot run here: AppArmor/);
    assert.deepEqual((bwrap as { remedy: string[] }).remedy, gap.remedy);
  });

  it("Landlock below ABI 4 cannot keep network: false; with neither backend there is nothing, with the remedy", () => {
    const old = caps({ ...UBUNTU, landlockAbi: 3 });
    assert.equal(chooseInstallBackend({ network: true }, old).kind, "landlock");
    const offline = chooseInstallBackend({ network: false }, old);
    assert.equal(offline.kind, "none");
    assert.match((offline as { reason: string }).reason, /ABI 3 cannot block TCP/);
    const nothing = chooseInstallBackend({}, caps({ ...UBUNTU, landlockAbi: 0 }));
    assert.equal(nothing.kind, "none");
    assert.match((nothing as { reason: string }).reason, /needs bubblewrap or Landlock: .*no Landlock/);
  });
});

describe("Landlock install rules (pure)", () => {
  const policy = {
    network: false,
    buildDir: "/srv/venvs/.build-ext-0123456789ab",
    cacheDir: "/srv/venvs/.cache/ext/pip",
    home: "/tmp/pyisolate-install-a/home",
    tmp: "/tmp/pyisolate-install-a/tmp",
    readonlyPaths: ["/home/alice/.pyenv/versions/3.11.7", "/opt/pypi"],
  };

  it("writes only the build folder, the cache, the private home and tmp (and /dev/null and friends)", () => {
    const rules = buildInstallLandlockRules(policy);
    assert.deepEqual(
      rules.writable.filter((p) => !p.startsWith("/dev/")),
      [policy.buildDir, policy.cacheDir, policy.home, policy.tmp],
    );
    assert.ok(rules.writable.includes("/dev/null") && !rules.writable.includes("/dev/shm"), "no host /dev/shm");
    assert.equal(rules.cwd, policy.buildDir);
    assert.equal(rules.network, false);
  });

  it("reads the system, the Python install and the sources, never the home, /tmp, /etc or /proc as a whole", () => {
    const rules = buildInstallLandlockRules(policy);
    for (const p of [
      "/usr",
      "/home/alice/.pyenv/versions/3.11.7",
      "/opt/pypi",
      "/etc/ssl",
      "/etc/pip.conf",
      "/etc/os-release",
    ])
      assert.ok(rules.readOnly.includes(p), p);
    for (const p of ["/", "/home", "/home/alice", "/root", "/tmp", "/etc", "/proc", "/sys", "/etc/resolv.conf"])
      assert.ok(!rules.readOnly.includes(p), p);
    assert.ok(
      buildInstallLandlockRules({ ...policy, network: true }).readOnly.includes("/etc/resolv.conf"),
      "name resolution only with the network",
    );
    assert.deepEqual(JSON.parse(encodeInstallLandlockRules(rules)), {
      read_only: rules.readOnly,
      writable: rules.writable,
      network: false,
      unix_sockets: false,
      socket_filter: rules.socketFilter,
      cwd: policy.buildDir,
    });
    assert.equal(
      buildInstallLandlockRules({ ...policy, network: true }).unixSockets,
      false,
      "an install never gets socket(AF_UNIX), with the network or not",
    );
  });

  it("refuses relative paths, and wraps the installer's argv in the launcher", () => {
    assert.throws(() => buildInstallLandlockRules({ ...policy, cacheDir: "cache" }), ConfigError);
    assert.deepEqual(wrapWithConfineExec("/v/bin/python", "/rt/confine_exec.py", ["/usr/bin/uv", "pip", "install"]), [
      "/v/bin/python",
      "-I",
      "-S",
      "/rt/confine_exec.py",
      "--",
      "/usr/bin/uv",
      "pip",
      "install",
    ]);
    assert.throws(
      () => wrapWithConfineExec("/v/bin/python", "/rt/confine_exec.py", ["uv", "pip"]),
      /not an absolute path/,
    );
  });
});
