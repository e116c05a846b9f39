"""The heartbeat thread: answers each ping with the age of a pending event-loop wake-up, from outside the loop."""

import asyncio
import socket
import struct
import threading
import time
import unittest

from pyisolate._guest.heartbeat import Heartbeat


class HeartbeatTest(unittest.TestCase):
    def setUp(self):
        self.host, guest = socket.socketpair()
        self.host.settimeout(5)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=Heartbeat(guest, self.loop).run, daemon=True)
        self.thread.start()

    def tearDown(self):
        self.host.close()
        self.thread.join(5)
        self.loop.close()

    def ping(self):
        self.host.sendall(b"\x01")
        return struct.unpack(">I", self.host.recv(4))[0]

    def test_a_running_loop_answers_zero(self):
        self.assertEqual(self.ping(), 0)  # schedules a wake-up
        self.loop.run_until_complete(asyncio.sleep(0.01))  # the loop runs it
        self.assertEqual(self.ping(), 0)

    def test_a_stalled_loop_reports_how_long_its_wake_up_waited(self):
        self.assertEqual(self.ping(), 0)
        time.sleep(0.3)  # the loop does not run: as in a busy sync method
        self.assertGreaterEqual(self.ping(), 250)
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.assertEqual(self.ping(), 0, "once the loop ran, it is healthy again")

    def test_one_answer_per_ping_byte_and_the_thread_ends_with_the_socket(self):
        self.host.sendall(b"\x01\x01\x01")
        got = b""
        while len(got) < 12:
            got += self.host.recv(12 - len(got))
        self.assertEqual(len(got), 12)
        self.host.shutdown(socket.SHUT_WR)
        self.thread.join(5)
        self.assertFalse(self.thread.is_alive())


if __name__ == "__main__":
    unittest.main()
