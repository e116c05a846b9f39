// Value codec: round trips through JSON, tags, refusals with the type and path, and extension hooks.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ProtocolError } from "../src/errors.js";
import { Codec, MAX_DEPTH } from "../src/rpc/codec.js";
import type { AnyFunction, ValueKind } from "../src/rpc/value-kind.js";

/** Encode, send through JSON text (as the wire does), decode. */
function roundTrip(codec: Codec, value: unknown): { wire: unknown; decoded: unknown; tagged: boolean } {
  const encoded = codec.encode(value);
  const wire: unknown = JSON.parse(JSON.stringify(encoded.value));
  const copy: unknown = JSON.parse(JSON.stringify(encoded.value));
  return { wire, decoded: codec.decode(copy, encoded.attachments), tagged: encoded.tagged };
}

function fnCodec(): { codec: Codec; exported: AnyFunction[]; imported: number[] } {
  const exported: AnyFunction[] = [];
  const imported: number[] = [];
  const codec = new Codec({
    callables: {
      exportFn: (fn) => exported.push(fn),
      importFn: (id) => {
        imported.push(id);
        return () => `proxy ${id}`;
      },
    },
  });
  return { codec, exported, imported };
}

describe("codec: encoding", () => {
  const codec = new Codec();

  test("plain JSON values pass through untouched, untagged", () => {
    const value = { a: [1, "two", true, null, { b: -0.5 }], c: "", d: {} };
    const encoded = codec.encode(value);
    assert.equal(encoded.value, value, "same object: nothing was copied");
    assert.equal(encoded.tagged, false);
    assert.deepEqual(encoded.attachments, []);
  });

  test("undefined becomes null, in lists and objects, without touching the input", () => {
    const input = { a: undefined, b: [1, undefined], c: 3 };
    const encoded = codec.encode(input);
    assert.deepEqual(encoded.value, { a: null, b: [1, null], c: 3 });
    assert.equal(encoded.tagged, false);
    assert.deepEqual(input, { a: undefined, b: [1, undefined], c: 3 });
    assert.equal(codec.encode(undefined).value, null);
  });

  test("bigints: plain numbers inside the safe range, $int outside", () => {
    const big = 2n ** 64n;
    const { wire, decoded, tagged } = roundTrip(codec, [5n, BigInt(Number.MAX_SAFE_INTEGER), -big, big]);
    assert.deepEqual(wire, [
      5,
      Number.MAX_SAFE_INTEGER,
      { $int: "-18446744073709551616" },
      { $int: "18446744073709551616" },
    ]);
    assert.deepEqual(decoded, [5, Number.MAX_SAFE_INTEGER, -big, big]);
    assert.equal(tagged, true);
  });

  test("non-finite floats travel as $float", () => {
    const { wire, decoded } = roundTrip(codec, { n: NaN, p: Infinity, m: -Infinity, f: 1.5 });
    assert.deepEqual(wire, { n: { $float: "nan" }, p: { $float: "inf" }, m: { $float: "-inf" }, f: 1.5 });
    assert.deepEqual(decoded, { n: NaN, p: Infinity, m: -Infinity, f: 1.5 });
  });

  test("bytes: Uint8Array, Buffer, subarray views and ArrayBuffer become attachments", () => {
    const backing = Uint8Array.of(0, 1, 2, 3, 4, 5);
    const view = backing.subarray(2, 4);
    const ab = Uint8Array.of(9, 9).buffer;
    const encoded = codec.encode([view, Buffer.from("hi"), ab, new Uint8Array(0)]);
    assert.deepEqual(encoded.value, [{ $bytes: 0 }, { $bytes: 1 }, { $bytes: 2 }, { $bytes: 3 }]);
    assert.equal(encoded.attachments[0], view, "the view itself, no copy");
    assert.deepEqual(
      encoded.attachments.map((a) => [...a]),
      [[2, 3], [104, 105], [9, 9], []],
    );
    const decoded = codec.decode(JSON.parse(JSON.stringify(encoded.value)), encoded.attachments) as Uint8Array[];
    assert.equal(decoded[0], view, "decoding hands out the attachment, not a copy");
  });

  test("Map and single-$-key objects become $map; decoded as plain objects with string keys", () => {
    const { wire, decoded } = roundTrip(codec, [
      new Map<unknown, unknown>([
        [1, "one"],
        [2n ** 70n, [true]],
        ["s", null],
      ]),
      { $x: 1 },
      { $a: 1, b: 2 },
    ]);
    assert.deepEqual(wire, [
      {
        $map: [
          [1, "one"],
          [{ $int: "1180591620717411303424" }, [true]],
          ["s", null],
        ],
      },
      { $map: [["$x", 1]] },
      { $a: 1, b: 2 },
    ]);
    assert.deepEqual(decoded, [{ 1: "one", "1180591620717411303424": [true], s: null }, { $x: 1 }, { $a: 1, b: 2 }]);
  });

  test("a __proto__ key stays an own property and never sets the prototype", () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}, "n": 0}') as Record<string, unknown>;
    input.n = NaN;
    const { decoded } = roundTrip(codec, input);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.deepEqual(Object.keys(decoded as object), ["__proto__", "n"]);
    const fromMap = codec.decode({ $map: [["__proto__", { $float: "nan" }]] }) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(fromMap), Object.prototype);
    assert.ok(Object.hasOwn(fromMap, "__proto__"));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("objects with a null prototype are plain", () => {
    const value = Object.assign(Object.create(null) as object, { a: 1 });
    assert.deepEqual(roundTrip(codec, value).decoded, { a: 1 });
  });

  test("functions are exported through the hook and imported as proxies", () => {
    const { codec: withFns, exported, imported } = fnCodec();
    const f = (): number => 1;
    const { wire, decoded } = roundTrip(withFns, { cb: f, list: [f] });
    assert.deepEqual(wire, { cb: { $fn: 1 }, list: [{ $fn: 2 }] });
    assert.deepEqual(exported, [f, f]);
    assert.deepEqual(imported, [1, 2]);
    assert.equal((decoded as { cb: () => string }).cb(), "proxy 1");
    assert.throws(() => codec.encode(f), /no callable hooks/);
  });

  test("refuses values the wire cannot carry, naming the type and where it is", () => {
    class Point {
      x = 1;
    }
    const cases: [unknown, RegExp][] = [
      [[1, { when: new Date(0) }], /^cannot send a Date at value\[1\]\.when$/],
      [new Set([1]), /^cannot send a Set at value$/],
      [{ p: new Point() }, /^cannot send an instance of class Point at value\.p$/],
      [{ "odd key": Symbol("s") }, /^cannot send a symbol \(Symbol\(s\)\) at value\["odd key"\]$/],
      [
        [new Float32Array(2)],
        /^cannot send a Float32Array at value\[0\]: typed arrays other than Uint8Array travel as tensors: send Tensor\.from\(array, shape\)/,
      ],
      [new Map([[1, new WeakMap()]]), /^cannot send a WeakMap at value\.get\(1\)$/],
      [new Map([[{}, 1]]), /^cannot send a Map key that is/],
      [Promise.resolve(1), /^cannot send a Promise at value$/],
      [new Error("x"), /^cannot send an Error at value$/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(
        () => codec.encode(value),
        (err: unknown) => err instanceof TypeError && pattern.test(err.message),
        String(pattern),
      );
    }
    assert.throws(() => codec.encode([new Date()], "args"), /at args\[0\]$/);
  });

  test("refuses circular and overly deep values with a TypeError", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(
      () => codec.encode(cyclic),
      (err: unknown) => err instanceof TypeError && /nested deeper than/.test(err.message),
    );
    let deep: unknown = 1;
    for (let i = 0; i < MAX_DEPTH - 1; i++) deep = [deep];
    assert.doesNotThrow(() => codec.encode(deep));
  });
});

describe("codec: decoding refusals", () => {
  const codec = new Codec();
  const cases: [string, unknown, Uint8Array[], RegExp][] = [
    ["unknown tag", { $nope: 1 }, [], /unknown tag "\$nope"/],
    ["$bytes out of range", { $bytes: 1 }, [new Uint8Array(1)], /attachment index 1 is not one of the frame's 1/],
    ["$bytes not an index", { $bytes: "0" }, [new Uint8Array(1)], /attachment index "0"/],
    ["$int not decimal", { $int: "12a" }, [], /malformed \$int "12a"/],
    ["$int a number", { $int: 5 }, [], /malformed \$int 5/],
    ["$int too long", { $int: "9".repeat(5000) }, [], /at most 4300 digits/],
    ["$float unknown", { $float: "NaN" }, [], /malformed \$float "NaN"/],
    ["$fn not an id", [{ $fn: -1 }], [], /malformed \$fn -1/],
    ["$map not a list", { $map: { a: 1 } }, [], /malformed \$map/],
    ["$map entry not a pair", { $map: [[1, 2, 3]] }, [], /malformed \$map entry \[1,2,3\]/],
  ];
  for (const [name, value, attachments, pattern] of cases) {
    test(name, () => {
      assert.throws(
        () => codec.decode(value, attachments),
        (err: unknown) => err instanceof ProtocolError && pattern.test(err.message),
      );
    });
  }

  test("too deep", () => {
    let deep: unknown = { $float: "nan" };
    for (let i = 0; i < MAX_DEPTH + 5; i++) deep = [deep];
    assert.throws(
      () => codec.decode(deep),
      (err: unknown) => err instanceof ProtocolError && /nested deeper/.test(err.message),
    );
  });
});

describe("codec: value kinds", () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: Uint8Array,
    ) {}
  }
  const pointKind: ValueKind = {
    tag: "$point",
    accepts: (value) => value instanceof Point,
    encode: (value, ctx) => ({ x: ctx.encode((value as Point).x), y: ctx.attach((value as Point).y) }),
    decode: (payload, ctx) => {
      const p = payload as { x: unknown; y: unknown };
      return new Point(ctx.decode(p.x) as number, ctx.attachment(p.y));
    },
  };

  test("a value kind encodes and decodes its own tag, with attachments and nested values", () => {
    const codec = new Codec({ kinds: [pointKind] });
    const y = Uint8Array.of(4, 2);
    const { wire, decoded, tagged } = roundTrip(codec, [new Point(Infinity, y)]);
    assert.equal(tagged, true);
    assert.deepEqual(wire, [{ $point: { x: { $float: "inf" }, y: 0 } }]);
    const [p] = decoded as Point[];
    assert.ok(p instanceof Point);
    assert.equal(p.x, Infinity);
    assert.equal(p.y, y);
  });

  test("value kinds may not claim built-in or duplicate tags", () => {
    assert.throws(() => new Codec({ kinds: [{ ...pointKind, tag: "$bytes" }] }), /must start with "\$" and be unique/);
    assert.throws(() => new Codec({ kinds: [pointKind, pointKind] }), /unique/);
    assert.throws(() => new Codec({ kinds: [{ ...pointKind, tag: "point" }] }), /must start with/);
  });
});
