// RPC peer failure paths: error mapping, refusals, abort, timeout, close, stream failure, protocol errors.

import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import {
  CallAbortedError,
  ExtensionClosedError,
  ExtensionCrashedError,
  ProtocolError,
  RemoteError,
} from "../src/errors.js";
import { encodeFrame } from "../src/rpc/framing.js";
import { deferred, peerPair, services } from "./rpc-helpers.js";

async function remoteError(promise: Promise<unknown>): Promise<RemoteError> {
  const err = await promise.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RemoteError, `expected a RemoteError, got ${err}`);
  return err;
}

describe("RpcPeer error mapping", () => {
  class KeyError extends Error {
    override name = "KeyError";
  }
  class Service {
    secret = "not a method";
    get trap(): () => void {
      throw new Error("getters must not run");
    }
    _private(): string {
      return "private";
    }
    sync(): never {
      throw new KeyError("no such key: 'x'");
    }
    async rejects(): Promise<never> {
      throw new TypeError("bad argument");
    }
    throwsString(): never {
      throw "plain string";
    }
    rejectsUndefined(): Promise<never> {
      return Promise.reject(undefined);
    }
    unsendable(): unknown {
      return { when: new Date(0) };
    }
    override(): string {
      return "ok";
    }
    toString(): string {
      return "Service";
    }
  }
  const setup = () => peerPair({}, { resolveTarget: services({ svc: new Service(), fnTarget: () => 1 }) });

  test("thrown errors keep their name as the remote type, message and stack", async () => {
    const { a } = setup();
    const sync = await remoteError(a.call("svc", "sync", []));
    assert.equal(sync.remoteType, "KeyError");
    assert.equal(sync.message, "KeyError: no such key: 'x'");
    assert.match(sync.remoteTraceback, /KeyError: no such key/);
    const rejected = await remoteError(a.call("svc", "rejects", []));
    assert.equal(rejected.remoteType, "TypeError");
    assert.equal(rejected.code, "ERR_PYISOLATE_REMOTE");
    const str = await remoteError(a.call("svc", "throwsString", []));
    assert.equal(str.remoteType, "Error");
    assert.equal(str.message, "Error: plain string");
    const undef = await remoteError(a.call("svc", "rejectsUndefined", []));
    assert.equal(undef.remoteType, "Error");
    a.close();
  });

  test("unknown targets are LookupError; unknown, private and inherited members are AttributeError", async () => {
    const { a } = setup();
    assert.equal((await remoteError(a.call("nope", "x", []))).remoteType, "LookupError");
    for (const method of [
      "missing",
      "_private",
      "constructor",
      "toString",
      "hasOwnProperty",
      "__proto__",
      "secret",
      "trap",
      "valueOf",
      "__defineGetter__",
      "",
    ]) {
      const err = await remoteError(a.call("svc", method, []));
      assert.equal(err.remoteType, "AttributeError", method);
    }
    for (const method of ["call", "apply", "bind"]) {
      assert.equal((await remoteError(a.call("fnTarget", method, []))).remoteType, "AttributeError", method);
    }
    assert.equal(await a.call("svc", "override", []), "ok");
    a.close();
  });

  test("a result that cannot be sent becomes a TypeError on the caller's side", async () => {
    const { a } = setup();
    const err = await remoteError(a.call("svc", "unsendable", []));
    assert.equal(err.remoteType, "TypeError");
    assert.match(err.message, /cannot send a Date at result\.when/);
    a.close();
  });

  test("arguments that cannot be sent reject locally; nothing is sent and no export leaks", async () => {
    const { a, aToB } = setup();
    await assert.rejects(a.call("svc", "sync", [() => 1, new Set()]), /^TypeError: cannot send a Set at args\[1\]$/);
    assert.equal(a.stats.exported, 0);
    assert.equal(aToB.headers.length, 0);
    await assert.rejects(a.call("svc", "sync", "nope" as never), TypeError);
    a.close();
  });

  test("calling a callable id the other side does not have is a LookupError", async () => {
    const { a } = setup();
    assert.equal((await remoteError(a.callFn(99, []))).remoteType, "LookupError");
    a.close();
  });
});

describe("RpcPeer abort and timeout", () => {
  /** A service whose `wait` call never answers until the test says so. */
  function hanging() {
    const started = deferred<void>();
    const release = deferred<string>();
    const pair = peerPair(
      {},
      {
        resolveTarget: services({
          svc: {
            wait(): Promise<string> {
              started.resolve();
              return release.promise;
            },
            ping: () => "pong",
          },
        }),
      },
    );
    return { ...pair, started: started.promise, release: release.resolve };
  }

  test("abort rejects locally with the reason as cause, then sends cancel; the late reply is dropped", async () => {
    const { a, b, aToB, bToA, started, release } = hanging();
    const controller = new AbortController();
    const call = a.call("svc", "wait", [], { signal: controller.signal });
    await started;
    const reason = new Error("user gave up");
    controller.abort(reason);
    const err = await call.catch((e: unknown) => e);
    assert.ok(err instanceof CallAbortedError);
    assert.equal(err.cause, reason);
    assert.equal(err.timedOut, false);
    assert.equal(err.code, "ERR_PYISOLATE_ABORTED");
    assert.match(err.message, /call svc\.wait was aborted/);
    const cancel = await aToB.waitFor((h) => h.k === "cancel");
    const callHeader = aToB.headers.find((h) => h.k === "call");
    assert.equal(cancel.id, callHeader?.id);
    assert.equal(await a.call("svc", "ping", []), "pong"); // b has read the cancel by now
    assert.equal(b.stats.incoming, 0);
    release("too late");
    assert.equal(await a.call("svc", "ping", []), "pong");
    assert.deepEqual(
      bToA.headers.filter((h) => h.id === cancel.id),
      [],
      "no reply to a cancelled call",
    );
    assert.equal(a.stats.pending, 0);
    a.close();
  });

  test("an already aborted signal rejects without sending anything", async () => {
    const { a, aToB } = hanging();
    const reason = new Error("before");
    await assert.rejects(
      a.call("svc", "wait", [], { signal: AbortSignal.abort(reason) }),
      (err: unknown) => err instanceof CallAbortedError && err.cause === reason,
    );
    assert.equal(aToB.headers.length, 0);
    a.close();
  });

  test("timeoutMs rejects with timedOut and a TimeoutError cause, and sends cancel", async () => {
    const { a, aToB } = hanging();
    const err = await a.call("svc", "wait", [], { timeoutMs: 20 }).catch((e: unknown) => e);
    assert.ok(err instanceof CallAbortedError);
    assert.equal(err.timedOut, true);
    assert.equal(err.code, "ERR_PYISOLATE_TIMEOUT");
    assert.match(err.message, /call svc\.wait timed out after 20 ms/);
    assert.equal((err.cause as Error).name, "TimeoutError");
    await aToB.waitFor((h) => h.k === "cancel");
    a.close();
  });

  test("AbortSignal.timeout counts as a timeout", async () => {
    const { a } = hanging();
    // AbortSignal.timeout's timer does not hold the event loop open, and in-memory streams do not either.
    const keepAlive = setInterval(() => {}, 1000);
    const err = await a.call("svc", "wait", [], { signal: AbortSignal.timeout(10) }).catch((e: unknown) => e);
    clearInterval(keepAlive);
    assert.ok(err instanceof CallAbortedError);
    assert.equal(err.timedOut, true);
    assert.equal((err.cause as Error).name, "TimeoutError");
    a.close();
  });

  test("a call that settles in time leaves no timer or listener behind", async () => {
    const { a, release } = hanging();
    const controller = new AbortController();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const timersBefore = timers();
    const call = a.call("svc", "wait", [], { signal: controller.signal, timeoutMs: 60_000 });
    // While the call is pending, its timeout and its abort listener exist: the checks below can see them go.
    assert.equal(timers(), timersBefore + 1, "the pending call's timeout is armed");
    assert.equal(getEventListeners(controller.signal, "abort").length, 1, "the pending call listens to its signal");
    release("done");
    assert.equal(await call, "done");
    assert.equal(timers(), timersBefore, "the settled call's timeout is cleared");
    assert.equal(
      getEventListeners(controller.signal, "abort").length,
      0,
      "the settled call no longer listens to its signal",
    );
    controller.abort(); // must not throw or send anything
    a.close();
  });

  test("bad options are refused with the option's name", async () => {
    const { a } = hanging();
    await assert.rejects(a.call("svc", "ping", [], { timeoutMs: -1 }), /options\.timeoutMs/);
    await assert.rejects(a.call("svc", "ping", [], { signal: {} as AbortSignal }), /options\.signal/);
    a.close();
  });
});

describe("RpcPeer close", () => {
  test("close(cause) rejects every pending call with the cause; the first cause wins", async () => {
    const never = new Promise(() => {});
    const { a, b } = peerPair({}, { resolveTarget: services({ svc: { wait: () => never } }) });
    const calls = Array.from({ length: 5 }, () =>
      a.call("svc", "wait", [], { timeoutMs: 60_000 }).catch((e: unknown) => e),
    );
    const crashed = new ExtensionCrashedError("stats", { exitCode: 1, signal: null, stderrTail: ["boom"] });
    a.close(crashed);
    a.close(new Error("second cause is ignored"));
    for (const err of await Promise.all(calls)) assert.equal(err, crashed);
    assert.equal(a.state, "closed");
    assert.equal(a.closeReason, crashed);
    await assert.rejects(a.call("svc", "wait", []), (err: unknown) => err === crashed);
    assert.deepEqual(a.stats, { pending: 0, incoming: 0, exported: 0, imported: 0 });
    // The other side sees the stream end and closes too.
    const other = await b.call("svc", "wait", []).catch((e: unknown) => e);
    assert.ok(other instanceof ExtensionClosedError);
  });

  test("close() without a cause rejects with ExtensionClosedError; a non-Error cause is chained", async () => {
    const { a, b } = peerPair({}, { resolveTarget: services({ svc: { wait: () => new Promise(() => {}) } }) });
    const pending = a.call("svc", "wait", []);
    a.close();
    await assert.rejects(
      pending,
      (err: unknown) => err instanceof ExtensionClosedError && err.code === "ERR_PYISOLATE_CLOSED",
    );
    const pending2 = b.call("svc", "wait", []).catch((e: unknown) => e);
    const c = peerPair({}, { resolveTarget: services({ svc: { wait: () => new Promise(() => {}) } }) });
    const p3 = c.a.call("svc", "wait", []).catch((e: unknown) => e);
    c.a.close("because");
    const err = await p3;
    assert.ok(err instanceof ExtensionClosedError);
    assert.equal(err.cause, "because");
    assert.ok((await pending2) instanceof ExtensionClosedError);
  });

  test("the other side hanging up rejects pending calls with ExtensionClosedError", async () => {
    const started = deferred<void>();
    const { a, b } = peerPair(
      {},
      {
        resolveTarget: services({ svc: { wait: () => (started.resolve(), new Promise(() => {})) } }),
      },
    );
    const pending = a.call("svc", "wait", []).catch((e: unknown) => e);
    await started.promise;
    b.close();
    const err = await pending;
    assert.ok(err instanceof ExtensionClosedError);
    assert.match((err as Error).message, /closed by the other side/);
  });

  test("with onDisconnect, the owner closes with a better cause after the stream ends", async () => {
    const started = deferred<void>();
    const disconnected = deferred<ExtensionClosedError>();
    const { a, b } = peerPair(
      { onDisconnect: (err) => disconnected.resolve(err) },
      {
        resolveTarget: services({ svc: { wait: () => (started.resolve(), new Promise(() => {})) } }),
      },
    );
    const pending = a.call("svc", "wait", []).catch((e: unknown) => e);
    await started.promise;
    b.close();
    const notice = await disconnected.promise;
    assert.match(notice.message, /closed by the other side/);
    assert.equal(a.stats.pending, 1, "pending calls wait for the owner");
    const later = a.call("svc", "wait", []).catch((e: unknown) => e);
    assert.equal(a.stats.pending, 2, "a call made after the disconnect waits for the owner too");
    const crashed = new ExtensionCrashedError("stats", { exitCode: null, signal: "SIGKILL", stderrTail: [] });
    a.close(crashed);
    assert.equal(await pending, crashed);
    assert.equal(await later, crashed, "and rejects with the owner's cause, not the disconnect notice");
  });

  test("a stream error rejects pending calls with ExtensionClosedError whose cause is the error", async () => {
    const { a, streams } = peerPair({}, { resolveTarget: services({ svc: { wait: () => new Promise(() => {}) } }) });
    const pending = a.call("svc", "wait", []).catch((e: unknown) => e);
    const failure = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    streams.a.destroy(failure);
    const err = await pending;
    assert.ok(err instanceof ExtensionClosedError);
    assert.equal(err.cause, failure);
    assert.match(err.message, /ECONNRESET/);
  });

  test("Symbol.asyncDispose and Symbol.dispose close the peer", async () => {
    const { a, b } = peerPair();
    await a[Symbol.asyncDispose]();
    assert.equal(a.state, "closed");
    b[Symbol.dispose]();
    assert.equal(b.state, "closed");
  });
});

describe("RpcPeer protocol errors", () => {
  function setup() {
    const reported: ProtocolError[] = [];
    const got = deferred<ProtocolError>();
    const pair = peerPair(
      { resolveTarget: services({ svc: { ping: () => "pong" } }) },
      {
        resolveTarget: services({ svc: { wait: () => new Promise(() => {}) } }),
        onProtocolError: (err) => {
          reported.push(err);
          got.resolve(err);
        },
      },
    );
    return { ...pair, reported, reportedOnce: got.promise };
  }

  const bad: [string, Buffer, RegExp][] = [
    ["a malformed frame", Buffer.from([0, 0, 0, 5, 0, 0, 0, 9, 0]), /header length 9 exceeds/],
    [
      "an unknown message kind",
      Buffer.concat(encodeFrame({ k: "teleport", id: 1 })),
      /unknown message kind "teleport"/,
    ],
    [
      "a call without args",
      Buffer.concat(encodeFrame({ k: "call", id: 1, target: "svc", method: "wait" })),
      /"args" must be a list/,
    ],
    [
      "a call with a bad id",
      Buffer.concat(encodeFrame({ k: "call", id: 0, target: "svc", method: "wait", args: [] })),
      /"id" must be a positive integer/,
    ],
    [
      "a bad tag",
      Buffer.concat(encodeFrame({ k: "call", id: 1, target: "svc", method: "wait", args: [{ $float: "big" }], x: 1 })),
      /malformed \$float/,
    ],
    [
      "a call whose kw is a list",
      Buffer.concat(encodeFrame({ k: "call", id: 1, target: "svc", method: "wait", args: [], kw: [1] })),
      /"kw" must be an object/,
    ],
    [
      "a call whose kw is null",
      Buffer.concat(encodeFrame({ k: "call", id: 1, target: "svc", method: "wait", args: [], kw: null })),
      /"kw" must be an object/,
    ],
    [
      "a keyword name that is not an identifier",
      Buffer.concat(encodeFrame({ k: "call", id: 1, target: "svc", method: "wait", args: [], kw: { "a-b": 1 } })),
      /"a-b" in "kw" is not a Python identifier/,
    ],
    [
      "a keyword name that would read as a tag",
      Buffer.concat(
        encodeFrame({ k: "call", id: 1, target: "svc", method: "wait", args: [], kw: { $bytes: 0 }, x: 1 }),
      ),
      /"\$bytes" in "kw" is not a Python identifier/,
    ],
    [
      "a bad tag in kw",
      Buffer.concat(
        encodeFrame({ k: "call", id: 1, target: "svc", method: "wait", args: [], kw: { n: { $int: "x" } }, x: 1 }),
      ),
      /malformed \$int/,
    ],
    [
      "an error without a type",
      Buffer.concat(encodeFrame({ k: "error", id: 1, error: { message: "x" } })),
      /"type" and "message"/,
    ],
    ["a release with bad ids", Buffer.concat(encodeFrame({ k: "release", fns: ["a"] })), /"fns" must be a list/],
  ];
  for (const [name, bytes, pattern] of bad) {
    test(`${name} is reported to onProtocolError and closes the peer, rejecting its calls`, async () => {
      const { a, b, streams, reportedOnce, reported } = setup();
      const pending = b.call("svc", "wait", []).catch((e: unknown) => e);
      streams.a.write(bytes);
      const err = await reportedOnce;
      assert.match(err.message, pattern);
      assert.equal(err.code, "ERR_PYISOLATE_PROTOCOL");
      assert.equal(b.state, "closed");
      assert.equal(await pending, err);
      assert.equal(reported.length, 1);
      a.close();
    });
  }

  test("a result for a call nobody made is ignored", async () => {
    const { a, b, streams, reported } = setup();
    streams.a.write(Buffer.concat(encodeFrame({ k: "result", id: 12345, value: 1 })));
    streams.a.write(Buffer.concat(encodeFrame({ k: "cancel", id: 999 })));
    streams.a.write(Buffer.concat(encodeFrame({ k: "release", fns: [77] })));
    assert.equal(await b.call("svc", "ping", []), "pong"); // b read the frames above before this answer
    assert.deepEqual(reported, []);
    assert.equal(b.state, "open");
    a.close();
  });
});
