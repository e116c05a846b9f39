// The host's lone-result path (lone-result.ts loneResult, read from the frame's bytes) accepts only what the general
// parser accepts, with the same id and value, and reads nothing outside its frame; everything else goes the general
// way, refusals included.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ProtocolError } from "../src/errors.js";
import { encodeFrame } from "../src/rpc/framing.js";
import { parseMessage } from "../src/rpc/messages.js";
import { RpcPeer } from "../src/rpc/peer.js";
import { loneResult as loneResultAt } from "../src/rpc/lone-result.js";
import { fuzzSettings } from "./resilience-fuzz-arbitraries.js";
import { unixSocketPair } from "./rpc-helpers.js";

/** The general path's verdict on a header text: the result's id and value, or "refused" / "other". */
function generalVerdict(text: string): { id: number; value: unknown } | "refused" | "other" {
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    return "refused";
  }
  let msg: Record<string, unknown>;
  try {
    msg = parseMessage(header) as unknown as Record<string, unknown>;
  } catch {
    return "refused";
  }
  if (msg.k !== "result" || msg.x !== undefined || msg.a !== undefined || msg.f !== undefined) return "other";
  return { id: msg.id as number, value: msg.value };
}

/** loneResult of a header given as text, alone in its buffer. */
function loneResult(text: string) {
  const bytes = Buffer.from(text);
  return loneResultAt(bytes, 0, bytes.length);
}

const CANONICAL = (id: string, value: string) => `{"k":"result","id":${id},"value":${value}}`;

/** Ids as text: fine ones and those at the checks (zero, leading zeros, 2^53 and past it, signs, exponents). */
const idText = fc.oneof(
  fc.integer({ min: 1, max: 2 ** 31 }).map(String),
  fc.constantFrom("0", "00", "07", "-1", "1e3", "1.0", "9007199254740991", "9007199254740992", "999999999999999"),
  fc.constantFrom("1000000000000000", "12345678901234567890", " 5", '"5"', "null", ""),
);

/** Value texts: JSON of any value, and texts that are not one JSON value or smuggle a key after it. */
const valueText = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('1,"x":1', '{"a":1},"id":6', '"a","value":"b"', "1}", "", " 1 ", "[1", "NaN", "-0", "1e400"),
  fc.constantFrom('{"__proto__":{"x":1}}', '"\\ud800"', '"}"', '{"$bytes":0}', "[[[[[[[[1]]]]]]]]"),
);

/** Whole headers: canonical ones, and ones with a key added, reordered, spaced or cut. */
const headerText = fc.oneof(
  fc.tuple(idText, valueText).map(([id, value]) => CANONICAL(id, value)),
  fc
    .tuple(idText, valueText, fc.constantFrom(',"x":1', ',"f":2', ',"a":[1]', ',"k":"call"', " ", "\n"))
    .map(([id, value, extra]) => CANONICAL(id, value).slice(0, -1) + extra + "}"),
  fc.tuple(idText, valueText).map(([id, value]) => `{"id":${id},"k":"result","value":${value}}`),
  fc.tuple(idText, valueText).map(([id, value]) => `{"k":"result", "id":${id},"value":${value}}`),
  fc.tuple(idText, valueText, fc.nat(40)).map(([id, value, cut]) => CANONICAL(id, value).slice(0, -1 - cut)),
);

describe("lone result path (host)", () => {
  it("accepts exactly what the general parser accepts as a plain result, with the same id and value", () => {
    const reached = { lone: 0, declined: 0 };
    fc.assert(
      fc.property(headerText, (text) => {
        const lone = loneResult(text);
        if (lone === undefined) {
          reached.declined++;
          return;
        }
        reached.lone++;
        const general = generalVerdict(text);
        assert.notEqual(typeof general, "string", `lone path took ${text}, the general path says ${String(general)}`);
        assert.deepEqual(lone, general);
      }),
      fuzzSettings(2000),
    );
    assert.ok(reached.lone > 100 && reached.declined > 100, `both verdicts reached: ${JSON.stringify(reached)}`);
  });

  it("reads only its own range, whatever the bytes around it", () => {
    const around = fc.uint8Array({ maxLength: 24 });
    fc.assert(
      fc.property(headerText, around, around, (text, before, after) => {
        const header = Buffer.from(text);
        const data = Buffer.concat([before, header, after]);
        assert.deepEqual(loneResultAt(data, before.length, before.length + header.length), loneResult(text));
      }),
      fuzzSettings(2000),
    );
    // The bytes after the range would complete these; read past it, they would be taken.
    const cut = Buffer.from(CANONICAL("5", "12") + "3}");
    assert.deepEqual(loneResultAt(cut, 0, cut.length - 2), { id: 5, value: 12 });
    const openValue = Buffer.from('{"k":"result","id":5,"value":}1}');
    assert.equal(loneResultAt(openValue, 0, openValue.length - 2), undefined);
  });

  it("reads the literals our guests write in place, and other values as JSON", () => {
    const cases: [string, unknown][] = [
      ["0", 0],
      ["-7", -7],
      ["999999999999999", 999999999999999],
      ["-999999999999999", -999999999999999],
      ["9007199254740993", 9007199254740992], // 16 digits: parsed as JSON, as the general path does
      ["-0", -0],
      ["1.5", 1.5],
      ["true", true],
      ["false", false],
      ["null", null],
    ];
    for (const [text, value] of cases) assert.deepEqual(loneResult(CANONICAL("3", text)), { id: 3, value }, text);
    for (const text of ["01", "-", "nul", "nulls", "truefalse", "+1", "1-"])
      assert.equal(loneResult(CANONICAL("3", text)), undefined, text);
  });

  it("reads the ids and values our peers write", () => {
    assert.deepEqual(loneResult(CANONICAL("1", "1")), { id: 1, value: 1 });
    assert.deepEqual(loneResult(CANONICAL("9007199254740991", "null")), undefined); // 16 digits: the general path decides
    assert.deepEqual(loneResult(CANONICAL("999999999999999", '"é 🐍"')), { id: 999999999999999, value: "é 🐍" });
    assert.deepEqual(loneResult(CANONICAL("42", '{"a":[1,{"b":null}]}')), { id: 42, value: { a: [1, { b: null }] } });
  });

  it("declines shapes it does not read, so the general path answers or refuses them", () => {
    for (const text of [
      CANONICAL("0", "1"),
      CANONICAL("07", "1"),
      CANONICAL("1", '1,"x":1'),
      CANONICAL("1", "1") + " ",
      `{"k":"result","id":1,"value":1,"f":1}`,
      `{"k":"result","id":1,"value":{"$tensor":{"dtype":"float32","shape":[2]}},"x":1,"f":1}`, // tagged: declined unparsed
      `{"k":"result","id":1,"value":[{"$bytes":0}],"x":1}`, // tagged, its flag last: declined before any search
      CANONICAL("1", '"$5"'), // a plain string that starts with a dollar: the general path reads it
      `{"k":"results","ids":[1],"values":[1]}`,
      `{"k":"result","id":1}`,
    ]) {
      assert.equal(loneResult(text), undefined, text);
    }
  });
});

describe("lone result frames at a peer", () => {
  /** A host peer and the raw socket of its other side. */
  async function peerAndWire() {
    const { a: ours, b: theirs, cleanup } = await unixSocketPair();
    const errors: ProtocolError[] = [];
    const peer = new RpcPeer(ours, { onProtocolError: (err) => errors.push(err) });
    return { peer, theirs, errors, cleanup };
  }

  it("resolves calls from lone results and from the general path alike, in order", async () => {
    const { peer, theirs, cleanup } = await peerAndWire();
    const first = peer.call("ext", "a", []);
    const second = peer.call("ext", "b", []);
    const third = peer.call("ext", "c", []);
    theirs.write(
      Buffer.concat([
        ...encodeFrame({ k: "result", id: 2, value: { nested: ["x"] } }),
        ...encodeFrame({ value: "spaced", id: 1, k: "result" }), // another key order: the general path
        ...encodeFrame({ k: "result", id: 3 }), // no value: null
      ]),
    );
    assert.deepEqual(await second, { nested: ["x"] });
    assert.equal(await first, "spaced");
    assert.equal(await third, null);
    peer.close();
    theirs.destroy();
    cleanup();
  });

  it("refuses a lone result nested past the depth limit, as the general path does", async () => {
    const { peer, theirs, errors, cleanup } = await peerAndWire();
    const pending = peer.call("ext", "deep", []);
    const deep = "[".repeat(1500) + "]".repeat(1500);
    const text = CANONICAL("1", deep);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(text.length + 4, 0);
    head.writeUInt32BE(text.length, 4);
    theirs.write(Buffer.concat([head, Buffer.from(text)]));
    await assert.rejects(pending, (err: Error) => err instanceof ProtocolError && /nested deeper/.test(err.message));
    assert.equal(errors.length, 1);
    assert.equal(peer.state, "closed");
    theirs.destroy();
    cleanup();
  });

  it("ignores a lone result for a call it is not waiting for, and stays open", async () => {
    const { peer, theirs, errors, cleanup } = await peerAndWire();
    const pending = peer.call("ext", "a", []);
    theirs.write(
      Buffer.concat([
        ...encodeFrame({ k: "result", id: 77, value: 1 }),
        ...encodeFrame({ k: "result", id: 1, value: 2 }),
      ]),
    );
    assert.equal(await pending, 2);
    assert.deepEqual(errors, []);
    assert.equal(peer.state, "open");
    peer.close();
    theirs.destroy();
    cleanup();
  });
});
