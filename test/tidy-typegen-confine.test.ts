// `pyisolate types` parses hostile source confined: nothing of it runs, and the parser process itself gets no
// network, no host file, no written byte, bounded memory and CPU; inside bwrap where it runs, rlimits everywhere.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { detectSandbox } from "../src/sandbox/detect.js";
import { parserBwrapArgs, runConfined, type ParserConfinement } from "../src/types/typegen-confine.js";
import { generateTypes } from "../src/types/typegen.js";

const caps = await detectSandbox();
const bwrapSkip =
  caps.bwrap && (caps.backend === "bwrap" || caps.backend === "bwrap-degraded") && caps.namespaces.net
    ? undefined
    : `bwrap cannot run here with a network namespace (${caps.backend}): the parser runs with its rlimits alone`;
const CONFINEMENTS: { confinement: "auto" | "rlimits"; expect: ParserConfinement; skip?: string }[] = [
  { confinement: "auto", expect: "bwrap", skip: bwrapSkip },
  { confinement: "rlimits", expect: "rlimits" },
];

let dir: string;
let server: Server;
let port = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tidy-typegen-"));
  server = createServer((socket) => socket.end("host\n"));
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Runs `program` as the parser runs, with the limits given; its stdout. */
function probe(program: string, confinement: "auto" | "rlimits", limits = { cpuSeconds: 10, memoryMiB: 512 }) {
  return runConfined({ python: "python3", program, readOnly: [], stdin: "", timeoutMs: 30_000, limits, confinement });
}

/** A Python expression's outcome as one word: what it returned, or the exception's type name. */
const attempt = (expr: string): string =>
  `try:\n    print(repr(${expr}))\nexcept BaseException as e:\n    print(type(e).__name__)\n`;

describe("the type generator's parser, confined", () => {
  it("never binds / or the host's home, and has no network namespace shared with the host", () => {
    const args = parserBwrapArgs({ user: true, pid: true, net: true, ipc: true, uts: true, cgroup: true }, {}, [
      "/opt/py",
    ]);
    assert.ok(args.includes("--unshare-net"));
    assert.ok(args.includes("--clearenv"));
    const bound = args.flatMap((a, i) => (a.endsWith("bind") || a.endsWith("bind-try") ? [args[i + 1]] : []));
    assert.ok(
      !bound.includes("/") && !bound.some((p) => p === "/root" || p === "/home" || p?.startsWith("/tmp")),
      bound.join(" "),
    );
    assert.ok(bound.includes("/opt/py"));
  });

  for (const { confinement, expect, skip } of CONFINEMENTS) {
    describe(`confinement ${confinement}`, { skip }, () => {
      it("never runs the extension's import-time code: a module that writes a marker leaves none", async () => {
        const ext = join(dir, `side_effect_${confinement}`);
        const marker = join(dir, `marker-${confinement}`);
        await mkdir(ext, { recursive: true });
        const sideEffect = `open(${JSON.stringify(marker)}, "w").write("ran")\nimport os\nos.system("touch ${marker}")\n`;
        await writeFile(
          join(ext, "__init__.py"),
          `${sideEffect}from pyisolate import ExtensionBase\n\nclass Ext(ExtensionBase):\n    def m(self, x: int) -> str: ...\n`,
        );
        await writeFile(join(ext, "nested.py"), `${"(".repeat(100_000)}${")".repeat(100_000)}\n`);
        const result = await generateTypes(ext, { confinement });
        assert.equal(result.confinement, expect);
        assert.match(result.dts, /m\(x: number\): string;/);
        assert.ok(
          result.warnings.some((w) => /nested\.py: skipped, it does not parse/.test(w)),
          result.warnings.join("\n"),
        );
        assert.deepEqual(
          (await readdir(dir)).filter((f) => f.startsWith("marker")),
          [],
        );
      });

      it("cannot write a byte to a file, even one it may create", async () => {
        // Inside bwrap /tmp is its own empty tmpfs; without bwrap, a folder of this test's.
        const target = expect === "bwrap" ? "/tmp/probe" : join(dir, `probe-${confinement}`);
        const write = `os.write(os.open(${JSON.stringify(target)}, os.O_WRONLY | os.O_CREAT, 0o600), b"x")`;
        const out = await probe(
          `import os\n${attempt(write)}\n${attempt(`os.stat(${JSON.stringify(target)}).st_size`)}`,
          confinement,
        );
        assert.deepEqual(
          out.stdout.trim().split("\n"),
          ["OSError", "0"],
          "RLIMIT_FSIZE 0: the file is made, the write fails (EFBIG)",
        );
      });

      it("ends a parse that wants more memory than its limit in MemoryError inside the parser", async () => {
        const out = await probe(attempt("len(bytearray(1 << 30))"), confinement, { cpuSeconds: 10, memoryMiB: 256 });
        assert.equal(out.stdout.trim(), "MemoryError");
        const control = await probe(attempt("len(bytearray(64 << 20))"), confinement, {
          cpuSeconds: 10,
          memoryMiB: 256,
        });
        assert.equal(control.stdout.trim(), String(64 << 20), "the control: what fits the limit is allocated");
      });

      it("is killed by SIGXCPU when it spins past its CPU limit, a ProtocolError that says so", async () => {
        await assert.rejects(
          probe("while True:\n    pass\n", confinement, { cpuSeconds: 1, memoryMiB: 256 }),
          (e: unknown) => {
            assert.ok(e instanceof ProtocolError);
            assert.match(e.message, /^the type generator failed: killed by SIGXCPU/);
            return true;
          },
        );
      });
    });
  }

  describe("inside bwrap", { skip: bwrapSkip }, () => {
    it("reaches no host port and reads no host file, where the unconfined control does both", async () => {
      const secret = join(dir, "secret.txt");
      await writeFile(secret, "s3cret");
      const program =
        `import socket\n${attempt(`socket.create_connection(("127.0.0.1", ${port}), 2).recv(5)`)}` +
        attempt(`open(${JSON.stringify(secret)}).read()`) +
        attempt(`open("/etc/passwd").read()[:4]`);
      const inside = (await probe(program, "auto")).stdout.trim().split("\n");
      assert.equal(inside[0], "ConnectionRefusedError", "its own loopback: the host's port is not there");
      assert.equal(inside[1], "FileNotFoundError");
      assert.equal(inside[2], "FileNotFoundError");
      const control = (await probe(program, "rlimits")).stdout.trim().split("\n");
      assert.deepEqual(control.slice(0, 2), ["b'host\\n'", "'s3cret'"], "the control: without bwrap both are there");
    });
  });
});
