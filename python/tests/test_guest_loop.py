"""The guest's event loop (guest_loop.py) against asyncio's own: the same callbacks, in the same order, at the same
times, on real sockets and threads. Each scenario runs on both loops and the two logs must be equal."""

import asyncio
import logging
import socket
import threading
import time
import unittest

from pyisolate._guest import guest_loop


def both_loops(scenario):
    """The logs of `scenario(loop, log)` on asyncio's selector loop and on the guest's."""
    logs = []
    for make in (asyncio.SelectorEventLoop, guest_loop.GuestLoop):
        loop = make()
        log = []
        # A callback that fails (a cancelled handle run after all fails too) shows in the log.
        loop.set_exception_handler(lambda _loop, context, log=log: log.append(("reported", repr(context["exception"]))))
        try:
            scenario(loop, log)
        finally:
            loop.close()
        logs.append(log)
    return logs


class SameAsAsyncio(unittest.TestCase):
    def assertSameLogs(self, scenario):
        stock, ours = both_loops(scenario)
        self.assertTrue(stock, "the scenario logged nothing")
        self.assertEqual(ours, stock)
        return ours

    def test_suite_loops_are_guest_loops(self):
        # tests/__init__.py makes every loop of the suite the guest's: the peer and stream suites run on it too.
        async def which():
            return type(asyncio.get_running_loop())

        self.assertIs(asyncio.run(which()), guest_loop.GuestLoop)

    def test_callbacks_readers_and_timers_interleave_alike(self):
        def scenario(loop, log):
            a, b = socket.socketpair()
            try:

                def on_readable():
                    log.append(("read", a.recv(100)))
                    loop.call_soon(log.append, "soon after read")
                    if len(log) > 6:
                        loop.remove_reader(a)
                        loop.stop()
                    else:
                        b.send(b"again")

                def chain(n):
                    log.append(("chain", n))
                    if n < 3:
                        loop.call_soon(chain, n + 1)

                loop.add_reader(a, on_readable)
                loop.call_soon(chain, 0)
                loop.call_later(0, log.append, "later 0")
                b.send(b"first")
                loop.run_forever()
            finally:
                a.close()
                b.close()

        log = self.assertSameLogs(scenario)
        self.assertIn(("read", b"first"), log)

    def test_stop_runs_the_current_batch_only(self):
        def scenario(loop, log):
            def first():
                log.append("first")
                loop.stop()
                loop.call_soon(log.append, "made by the stopping batch")

            loop.call_soon(first)
            loop.call_soon(log.append, "same batch")
            loop.run_forever()
            log.append("stopped")
            loop.call_soon(loop.stop)
            loop.run_forever()
            log.append("stopped again")

        log = self.assertSameLogs(scenario)
        self.assertEqual(log, ["first", "same batch", "stopped", "made by the stopping batch", "stopped again"])

    def test_a_reader_removed_by_an_earlier_one_in_the_same_poll_does_not_run(self):
        def scenario(loop, log):
            pairs = [socket.socketpair() for _ in range(2)]
            try:
                (a1, b1), (a2, b2) = pairs

                def on(name, sock, other):
                    log.append((name, sock.recv(10)))
                    loop.remove_reader(other)
                    loop.call_soon(loop.stop)

                loop.add_reader(a1, on, "one", a1, a2)
                loop.add_reader(a2, on, "two", a2, a1)
                b1.send(b"x")
                b2.send(b"y")
                time.sleep(0.01)  # both readable before the loop polls: one poll reports both
                loop.run_forever()
            finally:
                for pair in pairs:
                    for s in pair:
                        s.close()

        log = self.assertSameLogs(scenario)
        self.assertEqual(len(log), 1)

    def test_a_reader_whose_handle_was_cancelled_is_unregistered_when_its_fd_is_ready(self):
        def scenario(loop, log):
            a, b = socket.socketpair()
            try:
                handle = loop._add_reader(a.fileno(), log.append, "ran")  # asyncio's own transports hold these
                handle.cancel()
                b.send(b"x")
                loop.call_later(0.01, loop.stop)
                loop.run_forever()
                log.append(("still registered", a.fileno() in loop._selector.get_map()))
            finally:
                a.close()
                b.close()

        self.assertEqual(self.assertSameLogs(scenario), [("still registered", False)])

    def test_waiting_for_a_timer_does_not_spin(self):
        def scenario(loop, log):
            loop.call_later(0.3, loop.stop)
            cpu = time.thread_time()
            loop.run_forever()
            log.append(time.thread_time() - cpu < 0.1)

        self.assertEqual(self.assertSameLogs(scenario), [True])

    def test_writers_and_hang_ups_wake_their_callbacks(self):
        def scenario(loop, log):
            a, b = socket.socketpair()
            try:

                def writable():
                    log.append("writable")
                    loop.remove_writer(a)
                    b.close()  # a's reader now sees the hang-up

                def readable():
                    log.append(("eof", a.recv(10)))
                    loop.remove_reader(a)
                    loop.stop()

                loop.add_writer(a, writable)
                loop.add_reader(a, readable)
                loop.run_forever()
            finally:
                a.close()
                b.close()

        self.assertEqual(self.assertSameLogs(scenario), ["writable", ("eof", b"")])

    def test_timers_fire_in_order_not_early_and_cancelled_ones_never(self):
        def scenario(loop, log):
            start = loop.time()
            # More timers than asyncio's purge threshold, two thirds cancelled: the turn that purges them is asyncio's.
            handles = [loop.call_at(start + 0.001 * (i % 7) + i * 1e-6, log.append, i) for i in range(300)]
            for i, handle in enumerate(handles):
                if i % 3:
                    handle.cancel()
            loop.call_later(0.05, lambda: log.append(("late", loop.time() - start >= 0.05)))
            loop.call_later(0.06, loop.stop)
            loop.run_forever()

        log = self.assertSameLogs(scenario)
        self.assertEqual(log[-1], ("late", True))
        self.assertEqual(log[:-1], sorted(range(0, 300, 3), key=lambda i: (i % 7, i)))

    def test_a_thread_wakes_a_loop_with_nothing_to_do(self):
        def scenario(loop, log):
            def from_thread():
                time.sleep(0.05)
                loop.call_soon_threadsafe(log.append, "from the thread")
                loop.call_soon_threadsafe(loop.stop)

            thread = threading.Thread(target=from_thread)
            thread.start()
            loop.run_forever()  # no timer, no reader of ours: only the thread can end this
            thread.join()

        self.assertEqual(self.assertSameLogs(scenario), ["from the thread"])

    def test_a_callback_that_raises_is_reported_and_the_loop_goes_on(self):
        def scenario(loop, log):
            loop.set_exception_handler(lambda _loop, context: log.append(("reported", type(context["exception"]))))

            def bad():
                raise ValueError("boom")

            loop.call_soon(bad)
            loop.call_soon(log.append, "after")
            loop.call_soon(loop.stop)
            loop.run_forever()

        self.assertEqual(self.assertSameLogs(scenario), [("reported", ValueError), "after"])

    def test_debug_mode_takes_asyncios_turn_and_warns_of_slow_callbacks(self):
        def scenario(loop, log):
            loop.set_debug(True)
            loop.slow_callback_duration = 0.01
            with self.assertLogs("asyncio", logging.WARNING) as logged:
                loop.call_soon(time.sleep, 0.02)
                loop.call_soon(loop.stop)
                loop.run_forever()
            log.append(any("took" in line for line in logged.output))

        self.assertEqual(self.assertSameLogs(scenario), [True])

    def test_coroutines_sleeps_and_socket_io(self):
        def scenario(loop, log):
            async def main():
                a, b = socket.socketpair()
                a.setblocking(False)
                b.setblocking(False)
                try:
                    await asyncio.sleep(0.01)
                    await loop.sock_sendall(b, b"ping")
                    log.append(await loop.sock_recv(a, 10))
                    sleeper = loop.create_task(asyncio.sleep(10))
                    done, _ = await asyncio.wait([sleeper], timeout=0.02)
                    log.append(len(done))
                    sleeper.cancel()
                    await asyncio.gather(sleeper, return_exceptions=True)
                finally:
                    a.close()
                    b.close()

            loop.run_until_complete(main())

        self.assertEqual(self.assertSameLogs(scenario), [b"ping", 0])


if __name__ == "__main__":
    unittest.main()
