// The trust boundary of pyisolate.yaml, key by key (docs/sandbox.md "The config file"): what the file may say,
// what only the host's code may say, and how code-given loader variables stay out of the bwrap binary.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { readConfigFile } from "../src/config/config-file.js";
import { FILE_ENV_ALLOWED } from "../src/config/env-policy.js";
import { fileRequirementProblem, grantedServices } from "../src/config/file-policy.js";
import { validateExtensionOptions } from "../src/config/validate.js";
import { ConfigError } from "../src/index.js";
import { splitEnvForBwrap } from "../src/process/clean-env.js";
import { buildLaunchCommand } from "../src/process/launch.js";
import { scratch } from "./trust-config-helpers.js";

const root = scratch("trust-config-unit-");
const ext = path.join(root.dir, "ext");
const yaml = path.join(ext, "pyisolate.yaml");
mkdirSync(path.join(ext, "wheels"), { recursive: true });
writeFileSync(path.join(ext, "__init__.py"), "");
mkdirSync(path.join(root.dir, "elsewhere"));
symlinkSync(path.join(root.dir, "elsewhere"), path.join(ext, "escape"));
after(() => root.remove());

/** Reads `text` as the folder's pyisolate.yaml. */
function read(text: string, fileEnv?: string[]): ReturnType<typeof readConfigFile> {
  writeFileSync(yaml, text);
  return readConfigFile(ext, { fileEnv });
}

function refused(text: string, key: string, fileEnv?: string[]): void {
  assert.throws(
    () => read(text, fileEnv),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key, `${text.trim()} -> ${e.message}`);
      assert.equal(e.file, yaml);
      assert.ok(e.message.startsWith(yaml), e.message);
      return true;
    },
  );
}

describe("the file itself", () => {
  it("is never read through a symlink, as a FIFO or a device, or past 64 KiB", () => {
    const secret = path.join(root.dir, "elsewhere", "secret.yaml");
    writeFileSync(secret, "env: {OMP_NUM_THREADS: '1'}\n");
    const cases: Array<[string, () => void, RegExp]> = [
      ["a symlink to a host file", () => symlinkSync(secret, yaml), /symbolic link/],
      ["a symlink to /dev/zero", () => symlinkSync("/dev/zero", yaml), /symbolic link/],
      // A FIFO would block the host's event loop for ever if it were opened for a blocking read.
      ["a FIFO", () => execFileSync("mkfifo", [yaml]), /not a regular file/],
      ["a folder", () => mkdirSync(yaml), /not a regular file/],
      ["70 KiB of comments", () => writeFileSync(yaml, "#".repeat(70 * 1024)), /larger than 65536 bytes/],
    ];
    for (const [what, plant, message] of cases) {
      rmSync(yaml, { recursive: true, force: true });
      plant();
      assert.throws(
        () => readConfigFile(ext),
        (e: unknown) => e instanceof ConfigError && e.file === yaml && message.test(e.message),
        what,
      );
    }
    rmSync(yaml, { recursive: true, force: true });
    // The control: the same text as a regular file is read.
    writeFileSync(yaml, "env: {OMP_NUM_THREADS: '1'}\n");
    assert.deepEqual(readConfigFile(ext), { env: { OMP_NUM_THREADS: "1" } });
  });
});

describe("env from the file", () => {
  it("takes the built-in tuning knobs", () => {
    assert.ok(FILE_ENV_ALLOWED.includes("OMP_NUM_THREADS"));
    assert.deepEqual(read("env: {OMP_NUM_THREADS: '2', TOKENIZERS_PARALLELISM: 'false'}\n").env, {
      OMP_NUM_THREADS: "2",
      TOKENIZERS_PARALLELISM: "false",
    });
  });

  it("refuses loader, interpreter, host, trust and proxy variables, and any name not on the list", () => {
    for (const name of [
      "LD_PRELOAD",
      "LD_LIBRARY_PATH",
      "LD_AUDIT",
      "GCONV_PATH",
      "GLIBC_TUNABLES",
      "MALLOC_CONF",
      "NLSPATH",
      "LOCPATH",
      "HOSTALIASES",
      "RES_OPTIONS",
      "PYTHONPATH",
      "PYTHONSTARTUP",
      "PYISOLATE_LANDLOCK",
      "PATH",
      "HOME",
      "TMPDIR",
      "VIRTUAL_ENV",
      "SSL_CERT_FILE",
      "https_proxy",
      "HTTP_PROXY",
      "MY_SETTING",
    ]) {
      refused(`env: {${name}: x}\n`, `env.${name}`);
    }
  });

  it("takes the names the host allows with load({ fileEnv }), and never a loader variable even then", () => {
    assert.deepEqual(read("env: {MY_SETTING: fast}\n", ["MY_SETTING"]).env, { MY_SETTING: "fast" });
    for (const name of ["LD_PRELOAD", "PYTHONPATH", "GCONV_PATH", "PATH", "no_proxy"]) {
      assert.throws(
        () => validateExtensionOptions({ name: "x", modulePath: ext, fileEnv: [name] }),
        (e: unknown) => e instanceof ConfigError && e.key === "fileEnv",
      );
    }
    // Code itself stays unrestricted: it is the host application's.
    assert.equal(
      validateExtensionOptions({ name: "x", modulePath: ext, env: { LD_PRELOAD: "/x.so" } }).env?.LD_PRELOAD,
      "/x.so",
    );
  });

  it("refuses a value longer than 1024 characters", () => {
    refused(`env: {OMP_NUM_THREADS: '${"1".repeat(1025)}'}\n`, "env.OMP_NUM_THREADS");
  });
});

describe("python, index URLs, findLinks and dependencies from the file", () => {
  it("python is a version only", () => {
    for (const v of ["3", "3.11", "3.11.7"]) assert.equal(read(`python: '${v}'\n`).python, v);
    for (const v of ["./fakepy", "/usr/bin/python3", "python3.11", "~/bin/python", "fakepy"])
      refused(`python: '${v}'\n`, "python");
  });

  it("indexUrl and extraIndexUrls are http(s) URLs only", () => {
    assert.equal(read("indexUrl: https://pypi.org/simple\n").indexUrl, "https://pypi.org/simple");
    for (const url of ["file:///opt/pypi/simple", "/opt/pypi/simple", "ftp://mirror/simple", "simple"]) {
      refused(`indexUrl: '${url}'\n`, "indexUrl");
      refused(`extraIndexUrls: ['${url}']\n`, "extraIndexUrls");
    }
  });

  it("findLinks are http(s) URLs or real folders strictly inside the extension folder", () => {
    const real = path.join(ext, "wheels");
    assert.deepEqual(read(`findLinks: [wheels, 'file://${real}', 'https://example.org/wheels/']\n`).findLinks, [
      real,
      real,
      "https://example.org/wheels/",
    ]);
    for (const entry of [".", "..", "../elsewhere", "/etc", "/tmp", "escape", "missing", "file:///etc", "ftp://x/"]) {
      refused(`findLinks: ['${entry}']\n`, "findLinks");
    }
  });

  it("dependencies never name a local path, a local archive or a non-http URL", () => {
    for (const ok of [
      "numpy==1.26.4",
      "torch[cuda]>=2; python_version >= '3.10'",
      "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
      "pkg @ git+https://example.org/r.git@v1",
      "https://example.org/pkg-1.0.tar.gz",
    ]) {
      assert.equal(fileRequirementProblem(ok), undefined, ok);
    }
    for (const bad of [
      "pkg @ file:///srv/other/pkg.whl",
      "file:///srv/pkg.whl",
      "./local",
      "../sibling",
      "/abs/pkg",
      "~/pkg",
      "pkg-1.0-py3-none-any.whl",
      "pkg.tar.gz",
      "pkg @ git+file:///repo",
      "pkg @ git+ssh://git@host/r.git",
      "pkg @ /abs/pkg.whl",
      "sub/dir",
      "pkg/../x @ https://example.org/x.whl",
    ]) {
      assert.ok(fileRequirementProblem(bad), bad);
    }
    refused("dependencies: ['six @ file:///etc/six.whl']\n", "dependencies");
  });
});

describe("what only widens, and timeouts", () => {
  it("systemSitePackages may be false, never true; keys that are the host's are unknown to the file", () => {
    assert.deepEqual(read("systemSitePackages: false\n"), { systemSitePackages: false });
    refused("systemSitePackages: true\n", "systemSitePackages");
    // `name` is upstream pyisolate's key too: accepted with a warning and ignored (test/compat-yaml.test.ts).
    for (const key of ["tensorTransport: copy", "fileEnv: [X]", "modulePath: /etc"])
      refused(`${key}\n`, key.split(":")[0]!);
    assert.deepEqual(read("name: other\n"), {});
  });

  it("timeouts from the file are bounded; from code, only by what a timer can hold", () => {
    assert.equal(read("startTimeoutMs: 600000\ncallTimeoutMs: 1000\n").startTimeoutMs, 600_000);
    refused("startTimeoutMs: 600001\n", "startTimeoutMs");
    refused("callTimeoutMs: 86400001\n", "callTimeoutMs");
    assert.equal(
      validateExtensionOptions({ name: "x", modulePath: ext, startTimeoutMs: 2_147_483_647 }).startTimeoutMs,
      2_147_483_647,
    );
    // Past 2^31 - 1 ms Node fires a timer at once: a huge timeout would be no timeout at all.
    assert.throws(
      () => validateExtensionOptions({ name: "x", modulePath: ext, callTimeoutMs: 2 ** 31 }),
      (e: unknown) => e instanceof ConfigError && e.key === "callTimeoutMs",
    );
  });

  it("services: the code's grant (all when absent) narrowed by the file's list", () => {
    const may = (code?: string[], file?: string[]) => ["A", "B"].filter(grantedServices(code, file));
    assert.deepEqual(may(), ["A", "B"]);
    assert.deepEqual(may(["A"]), ["A"]);
    assert.deepEqual(may(undefined, ["B"]), ["B"]);
    assert.deepEqual(may(["A"], ["A", "B"]), ["A"]);
    assert.deepEqual(may([], undefined), []);
  });
});

describe("loader variables given in code and the bwrap binary", () => {
  it("travel as --setenv inside; bwrap's own environment keeps the rest, secrets off its command line", () => {
    const env = {
      LD_PRELOAD: "/x/evil.so",
      GCONV_PATH: "/x",
      MALLOC_ARENA_MAX: "2",
      API_KEY: "s3cret",
      HOME: "/h",
      PATH: "/usr/bin",
    };
    assert.deepEqual(splitEnvForBwrap(env), {
      outer: { API_KEY: "s3cret", HOME: "/h", PATH: "/usr/bin" },
      setenv: [
        "--setenv",
        "LD_PRELOAD",
        "/x/evil.so",
        "--setenv",
        "GCONV_PATH",
        "/x",
        "--setenv",
        "MALLOC_ARENA_MAX",
        "2",
      ],
    });
    const cmd = buildLaunchCommand({
      pythonPath: "/usr/bin/python3",
      modulePath: "/ext",
      env,
      sandbox: { backend: "bwrap", bwrapPath: "/usr/bin/bwrap", bwrapArgs: ["--unshare-pid"], fds: [] },
    });
    assert.equal(cmd.env.LD_PRELOAD, undefined);
    const separator = cmd.args.indexOf("--");
    assert.deepEqual(cmd.args.slice(separator - 3, separator), ["--setenv", "MALLOC_ARENA_MAX", "2"]);
    assert.ok(!cmd.args.includes("s3cret"));
    // Unsandboxed, the environment goes to Python as given.
    assert.equal(
      buildLaunchCommand({ pythonPath: "/usr/bin/python3", modulePath: "/ext", env }).env.LD_PRELOAD,
      "/x/evil.so",
    );
  });
});
