"""Property-based fuzzing of the guest's frame decoder, value decoder and peer (hypothesis): every input ends in a
value or the guest's ProtocolError (the value decoder: its documented ValueError), never another exception or a hang.

Runs briefly in the suite (a fixed seed, a few hundred examples); scripts/fuzz.mjs runs it longer through
PYISOLATE_FUZZ_RUNS and PYISOLATE_FUZZ_SEED. hypothesis is a test dependency: .ci/run installs it, and a CI run as
root fails without it; elsewhere (a developer's machine, the unprivileged pass with /usr/bin/python3) it is a skip
that says why.
"""

import asyncio
import json
import os
import socket
import struct
import unittest

try:
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the machine
    st = None

from pyisolate._guest.codec import Decoder
from pyisolate._guest.framing import FrameDecoder, ProtocolError, encode_frame
from pyisolate._guest.peer import Peer

MISSING = "hypothesis is not installed (python3 -m pip install hypothesis): the guest's fuzz tests cannot run"
if st is None and os.environ.get("CI") and os.geteuid() == 0:
    raise ImportError(f"{MISSING}; CI installs it in .ci/run")


def _settings(default_runs):
    runs = int(os.environ.get("PYISOLATE_FUZZ_RUNS", default_runs))
    fixed = "PYISOLATE_FUZZ_SEED" not in os.environ
    return settings(
        max_examples=runs,
        deadline=None,
        database=None,
        derandomize=fixed,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def _seed(fn):
    return seed(int(os.environ["PYISOLATE_FUZZ_SEED"]))(fn) if "PYISOLATE_FUZZ_SEED" in os.environ else fn


def _frame(header, attachments):
    header = dict(header)
    if attachments:
        header["a"] = [len(a) for a in attachments]
    body = json.dumps(header, allow_nan=True).encode()
    return b"".join(encode_frame(body, attachments, [len(a) for a in attachments]))


if st is not None:
    EDGE = st.one_of(
        st.integers(-3, 8),
        st.sampled_from([2**31, 2**53, -(2**53), 2**64, 10**400]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
    )
    LEAF = st.one_of(
        EDGE, st.text(max_size=6), st.sampled_from(["$bytes", "nan", "inf", "-inf", "1e5", "-", "__class__"])
    )

    def _tagged(children):
        tag = lambda name, payload: payload.map(lambda p: {name: p})  # noqa: E731
        return st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=5), children, max_size=4),
            tag("$bytes", st.one_of(EDGE, children)),
            tag("$int", st.one_of(st.integers().map(str), st.text(max_size=6), st.just("1" * 5000), children)),
            tag("$float", st.one_of(st.sampled_from(["nan", "inf", "-inf", "NaN"]), children)),
            tag("$fn", st.one_of(EDGE, children)),
            tag("$map", st.one_of(st.lists(st.lists(children, max_size=3), max_size=4), children)),
            tag(
                "$tensor",
                st.one_of(
                    st.fixed_dictionaries(
                        {
                            "dtype": st.sampled_from(["float32", "uint8", "bool", "x"]),
                            "shape": st.lists(EDGE, max_size=3),
                            "storage": st.one_of(
                                st.fixed_dictionaries(
                                    {
                                        "kind": st.sampled_from(["bytes", "shm", "cuda"]),
                                        "attachment": EDGE,
                                        "size": EDGE,
                                        "fd": EDGE,
                                    }
                                ),
                                children,
                            ),
                        },
                        optional={"strides": st.lists(EDGE, max_size=3), "offset": EDGE},
                    ),
                    children,
                ),
            ),
            st.text(max_size=5).flatmap(lambda name: tag("$" + name, children)),
        )

    WIRE = st.recursive(LEAF, _tagged, max_leaves=6)
    FIELD = st.recursive(LEAF, _tagged, max_leaves=3)  # the many fields of a header stay small: generation is the cost
    KINDS = [
        "call",
        "result",
        "error",
        "cancel",
        "release",
        "event",
        "hello",
        "init",
        "ready",
        "fatal",
        "shutdown",
        "batch",
        "calls",
        "results",
    ]
    # Messages inside a batch: mostly near-valid plain ones, with the fields a batch must refuse mixed in.
    BATCHED = st.one_of(
        st.fixed_dictionaries(
            {"k": st.sampled_from(["call", "result", "error", "event", "batch", "cancel"]), "id": st.integers(0, 3)},
            optional={
                "target": st.just("svc"),
                "method": st.sampled_from(["echo", "boom"]),
                "args": st.lists(LEAF, max_size=2),
                "value": LEAF,
                "error": FIELD,
                "x": st.just(1),
                "f": st.integers(0, 2),
                "m": FIELD,
            },
        ),
        FIELD,
    )
    HEADER = st.one_of(
        st.fixed_dictionaries(
            {"k": st.one_of(st.sampled_from(KINDS), FIELD)},
            optional={
                "id": st.one_of(EDGE, FIELD),
                "x": st.one_of(st.just(1), LEAF),
                "f": st.one_of(st.just(0), EDGE),
                "fn": st.one_of(EDGE, FIELD),
                "target": st.one_of(st.just("svc"), LEAF),
                "method": st.one_of(st.sampled_from(["echo", "boom", "__init__", "_private"]), LEAF),
                "args": st.one_of(st.lists(FIELD, max_size=3), FIELD),
                "kw": st.one_of(st.dictionaries(st.text(max_size=4), FIELD, max_size=3), FIELD),
                "value": FIELD,
                "payload": FIELD,
                "name": LEAF,
                "error": FIELD,
                "fns": FIELD,
                "segs": FIELD,
                "cudaExports": FIELD,
                "m": FIELD,
                "ids": FIELD,
                "values": FIELD,
            },
        ),
        st.fixed_dictionaries(
            {"k": st.just("batch"), "m": st.one_of(st.lists(BATCHED, max_size=4), FIELD)},
            optional={"f": st.integers(0, 1), "a": st.just([])},
        ),
        # Runs of calls and results: ids and entries that mostly line up, with the fields a run must refuse mixed in.
        st.fixed_dictionaries(
            {
                "k": st.just("calls"),
                "target": st.one_of(st.just("svc"), LEAF),
                "method": st.sampled_from(["echo", "boom", "_private"]),
                "ids": st.one_of(st.lists(st.integers(0, 4), max_size=3), FIELD),
                "args": st.one_of(st.lists(st.one_of(st.lists(LEAF, max_size=2), LEAF), max_size=3), FIELD),
            },
            optional={"x": st.just(1), "kw": FIELD, "stream": EDGE, "fn": EDGE},
        ),
        st.fixed_dictionaries(
            {
                "k": st.just("results"),
                "ids": st.one_of(st.lists(st.integers(0, 4), max_size=3), FIELD),
                "values": st.one_of(st.lists(LEAF, max_size=3), FIELD),
            },
            optional={"x": st.just(1), "f": EDGE},
        ),
        st.fixed_dictionaries(
            {
                "k": st.just("call"),
                "id": st.integers(1, 50),
                "target": st.just("svc"),
                "method": st.sampled_from(["echo", "boom", "missing"]),
                "args": st.lists(FIELD, max_size=3),
                "x": st.just(1),
            }
        ),
        st.fixed_dictionaries({"k": st.just("event"), "name": st.text(max_size=4), "payload": FIELD, "x": st.just(1)}),
        st.fixed_dictionaries(
            {
                "k": st.sampled_from(["result", "error", "cancel"]),
                "id": st.integers(1, 3),
                "value": FIELD,
                "error": FIELD,
            }
        ),
    )

    FRAME = st.builds(_frame, HEADER, st.lists(st.binary(max_size=30), max_size=3))

    @st.composite
    def _mutated(draw):
        data = bytearray(draw(FRAME))
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["set", "cut", "insert", "length"]))
            at = draw(st.integers(0, len(data)))
            if op == "set" and at < len(data):
                data[at] = draw(st.integers(0, 255))
            elif op == "cut":
                del data[at:]
            elif op == "insert":
                data[at:at] = draw(st.binary(max_size=8))
            elif op == "length" and len(data) >= 8:
                field = draw(st.sampled_from([0, 4]))
                data[field : field + 4] = struct.pack(
                    ">I", draw(st.sampled_from([0, 3, 4, 8, 2**32 - 1]) | st.integers(0, 2**32 - 1))
                )
        return bytes(data)

    STREAM = st.lists(st.one_of(FRAME, _mutated(), st.binary(max_size=64)), min_size=1, max_size=4).map(b"".join)
    CUTS = st.lists(st.integers(0, 10**6), max_size=6)


def _chunks(data, cuts):
    points = sorted({c % len(data) for c in cuts}) if data else []
    out, start = [], 0
    for p in points:
        if p > start:
            out.append(data[start:p])
            start = p
    out.append(data[start:])
    return out


class Service:
    def echo(self, *args, **kw):
        return [list(args), kw]

    async def boom(self):
        raise TypeError("refused")


async def _feed(data, cuts):
    """Runs a real Peer on one end of a socketpair and writes `data` into the other; returns how run() ended."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    peer = Peer(reader, writer, on_message=lambda msg: None)
    peer.register("svc", Service())
    task = asyncio.get_running_loop().create_task(peer.run())
    loop = asyncio.get_running_loop()
    for piece in _chunks(data, cuts):
        await loop.sock_sendall(theirs, piece)
    theirs.shutdown(socket.SHUT_WR)
    try:
        await asyncio.wait_for(task, 10)
        return None
    except ProtocolError as e:
        return e
    finally:
        peer.close()
        theirs.close()


@unittest.skipIf(st is None, MISSING)
class FuzzFrameDecoderTest(unittest.TestCase):
    def test_any_byte_stream_split_anywhere_ends_in_frames_or_one_protocol_error(self):
        seen = {"frames": 0, "refused": 0}

        @_settings(200)
        @_seed
        @given(STREAM, CUTS)
        def check(data, cuts):
            decoder = FrameDecoder(4096)
            for piece in _chunks(data, cuts):
                try:
                    seen["frames"] += len(decoder.feed(piece))
                except ProtocolError:
                    seen["refused"] += 1
                    return  # the connection is dropped

        check()
        self.assertTrue(seen["frames"] > 0 and seen["refused"] > 0, seen)

    def test_well_formed_frames_decode_to_their_headers_however_the_stream_splits(self):
        @_settings(200)
        @_seed
        @given(st.lists(st.tuples(HEADER, st.lists(st.binary(max_size=30), max_size=3)), min_size=1, max_size=4), CUTS)
        def check(frames, cuts):
            data = b"".join(_frame(h, a) for h, a in frames)
            decoder = FrameDecoder(1 << 20)
            got = [m for piece in _chunks(data, cuts) for m in decoder.feed(piece)]
            self.assertEqual(len(got), len(frames))
            for (header, attachments), (msg, received) in zip(frames, got):
                self.assertEqual(received, attachments)
                self.assertEqual(msg.get("k"), json.loads(json.dumps(header))["k"])

        check()


@unittest.skipIf(st is None, MISSING)
class FuzzValueDecoderTest(unittest.TestCase):
    def test_any_tagged_value_decodes_or_raises_value_error(self):
        seen = {"decoded": 0, "refused": 0}

        @_settings(200)
        @_seed
        @given(WIRE, st.lists(st.binary(max_size=40), max_size=3))
        def check(value, attachments):
            decoder = Decoder(attachments, lambda fn_id: lambda *a: fn_id)
            try:
                decoder.decode(json.loads(json.dumps(value)))
                seen["decoded"] += 1
            except ValueError:
                seen["refused"] += 1
            finally:
                decoder.close()

        check()
        self.assertTrue(seen["decoded"] > 0 and seen["refused"] > 0, seen)


@unittest.skipIf(st is None, MISSING)
class FuzzPeerTest(unittest.TestCase):
    def test_a_peer_fed_any_stream_ends_normally_or_with_a_protocol_error(self):
        outcomes = {"clean": 0, "protocol": 0}

        @_settings(100)
        @_seed
        @given(STREAM, CUTS)
        def check(data, cuts):
            ended = asyncio.run(_feed(data, cuts))
            outcomes["clean" if ended is None else "protocol"] += 1

        check()
        self.assertTrue(outcomes["clean"] > 0 and outcomes["protocol"] > 0, outcomes)


def _json_takes(depth):
    try:
        json.loads("[" * depth + "]" * depth)
        return True
    except RecursionError:
        return False


class FoundByFuzzingTest(unittest.TestCase):
    """The inputs the fuzz tests found, fixed; these need no hypothesis."""

    def _run_peer(self, *headers):
        data = b"".join(_frame(h, []) for h in headers)
        return asyncio.run(_feed(data, []))

    def test_a_message_kind_that_is_a_list_is_a_protocol_error(self):
        self.assertIsInstance(self._run_peer({"k": []}), ProtocolError)

    def test_a_result_error_or_cancel_whose_id_is_not_an_integer_is_a_protocol_error(self):
        for kind in ("result", "error", "cancel"):
            self.assertIsInstance(self._run_peer({"k": kind, "id": [1]}), ProtocolError, kind)
        self.assertIsNone(
            self._run_peer({"k": "result", "id": 7, "value": 1}), "the control: an unknown integer id is ignored"
        )

    def test_an_event_too_deep_for_the_decoder_walk_is_a_protocol_error(self):
        # A depth json.loads takes but the tag walk cannot. Up to 3.11 both share the recursion limit and the walk
        # costs two frames a level (700 fits json, not the walk); from 3.12 comprehensions are inlined (one frame a
        # level, so 700 decodes, as the protocol allows) and json.loads counts against the larger C limit.
        depth = next(d for d in (1200, 700) if _json_takes(d))
        deep = 1
        for _ in range(depth):
            deep = [deep]
        error = self._run_peer({"k": "event", "name": "e", "payload": deep, "x": 1})
        self.assertIsInstance(error, ProtocolError)
        self.assertRegex(str(error), "nests too deep")

    def test_a_header_deeper_than_the_json_parser_allows_is_a_protocol_error(self):
        header = b'{"k": "event", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        frame = struct.pack(">II", 4 + len(header), len(header)) + header
        with self.assertRaisesRegex(ProtocolError, "recursion limit"):
            FrameDecoder(1 << 20).feed(frame)

    def test_an_unhashable_float_payload_is_a_value_error(self):
        with self.assertRaisesRegex(ValueError, r"\$float payload"):
            Decoder([], None).decode({"$float": {"$map": []}})
        self.assertTrue(Decoder([], None).decode({"$float": "inf"}) > 0)

    def test_a_map_key_that_decodes_unhashable_is_a_value_error(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed: no decoded value other than a tensor is unhashable")
        key = {
            "$tensor": {
                "dtype": "uint8",
                "shape": [1],
                "strides": [1],
                "offset": 0,
                "storage": {"kind": "bytes", "attachment": 0},
            }
        }
        with self.assertRaisesRegex(ValueError, "cannot key a Python dict"):
            Decoder([b"x"], None).decode({"$map": [[key, 1]]})


if __name__ == "__main__":
    unittest.main()
