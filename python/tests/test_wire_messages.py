"""The guest's one message check and its exit codes: the shared bad headers (test/vectors/bad-headers.json) refused."""

import ast
import asyncio
import json
import os
import re
import socket
import unittest

from pyisolate._guest import protocol as P
from pyisolate._guest.framing import ProtocolError, encode_frame
from pyisolate._guest.messages import check_message
from pyisolate._guest.peer import Peer

from .harness import Host

_VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "test", "vectors", "bad-headers.json")
_BOOTSTRAP = os.path.join(os.path.dirname(P.__file__), "bootstrap.py")


def _vectors() -> dict:
    with open(_VECTORS, encoding="utf-8") as f:
        return json.load(f)


def _frame(header: dict) -> bytes:
    return b"".join(encode_frame(json.dumps(header).encode(), [], []))


async def _peer_reading(header: dict):
    """A real Peer on one end of a socket pair, fed `header`: how its run() ended (None, or the error)."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    peer = Peer(reader, writer, on_message=lambda msg: None)
    task = asyncio.get_running_loop().create_task(peer.run())
    theirs.sendall(_frame(header))
    theirs.shutdown(socket.SHUT_WR)
    try:
        await asyncio.wait_for(task, 10)
        return None
    except ProtocolError as e:
        return e
    finally:
        peer.close()
        theirs.close()


class CheckMessageTest(unittest.TestCase):
    def test_every_shared_bad_header_is_a_protocol_error_that_names_its_field(self):
        bad = _vectors()["bad"]
        self.assertGreater(len(bad), 25)
        for case in bad:
            with self.assertRaisesRegex(ProtocolError, case["says"], msg=json.dumps(case["header"])):
                check_message(dict(case["header"]))

    def test_every_shared_good_header_passes_and_keeps_its_kind(self):
        for header in _vectors()["good"]:
            self.assertEqual(check_message(dict(header)), header["k"])

    def test_a_real_peer_ends_its_reading_with_that_protocol_error(self):
        for case in _vectors()["bad"]:
            ended = asyncio.run(_peer_reading(case["header"]))
            self.assertIsInstance(ended, ProtocolError, json.dumps(case["header"]))
            self.assertRegex(str(ended), case["says"])


class ExitCodeTest(unittest.TestCase):
    def test_each_cause_has_its_own_exit_code(self):
        codes = {name: value for name, value in vars(P).items() if name.startswith("EXIT_")}
        self.assertGreaterEqual(len(codes), 8)
        self.assertEqual(len(set(codes.values())), len(codes), codes)

    def test_bootstrap_repeats_the_not_confined_code_it_needs_before_imports(self):
        with open(_BOOTSTRAP, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        literals = {
            t.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
            and re.fullmatch(r"_EXIT_[A-Z_]+", t.id)
            and isinstance(node.value, ast.Constant)
            and t.id != "_EXIT_GRACE_S"
        }
        self.assertEqual(literals, {"_EXIT_NOT_CONFINED": P.EXIT_NOT_CONFINED})


class GuestExitTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.host = Host()
        await self.host.start()

    async def asyncTearDown(self):
        await self.host.close()

    async def test_a_call_whose_args_are_not_a_list_ends_the_guest_with_the_protocol_error_code(self):
        self.host.peer._transport.write(
            _frame({"k": "call", "id": 1, "target": "extension", "method": "m", "args": "x"})
        )
        self.assertEqual(await self.host.exit_status(), P.EXIT_PROTOCOL_ERROR)
        self.assertIn("protocol error, exiting: call 1: 'args' must be a list", await self.host.stderr())


if __name__ == "__main__":
    unittest.main()
