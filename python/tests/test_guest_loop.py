"""The guest's event loop (guest_loop.py) against asyncio's own: the same callbacks, in the same order, at the same
times, on real sockets and threads. Each scenario runs on both loops and the two logs must be equal."""

import asyncio
import logging
import socket
import threading
import time
import unittest
from unittest import mock

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


class _Clock:
    """A monotonic clock that moves `step` seconds each time it is read (and `jump` more when asked)."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class IdlePolling(unittest.TestCase):
    """The window before the loop sleeps (guest_loop.py, decision 63), with the clock and the yields under test."""

    def setUp(self):
        self.loop = guest_loop.GuestLoop(idle_poll=100e-6)
        self.a, self.b = socket.socketpair()
        self.loop.add_reader(self.a, lambda: None)
        self.clock = _Clock(1e-6)
        self.yields = 0
        self.on_yield = None
        patches = [
            mock.patch.object(guest_loop, "_monotonic", self.clock),
            mock.patch.object(guest_loop, "_yield", self._yield),
        ]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)

    def tearDown(self):
        self.loop.close()
        self.a.close()
        self.b.close()

    def _yield(self):
        self.yields += 1
        if self.on_yield is not None:
            self.on_yield(self.yields)

    def wait(self, timeout=0.002):
        """One wait of the loop's; the message it returned is read, so the next wait starts with none."""
        events = self.loop._wait(timeout, 2)
        if events:
            self.a.recv(100)
        return events

    def test_a_message_caught_while_polling_leaves_the_window_open(self):
        self.on_yield = lambda n: self.b.send(b"x") if n == 3 else None
        self.assertTrue(self.wait(-1))
        self.assertEqual(self.yields, 3)
        self.assertEqual(self.loop._window, 100e-6)

    def test_a_message_waiting_already_is_taken_without_a_yield(self):
        self.b.send(b"x")
        self.assertTrue(self.wait(-1))
        self.assertEqual(self.yields, 0)

    def test_waits_with_no_message_halve_the_window_until_it_closes(self):
        windows = []
        for _ in range(7):
            self.assertEqual(self.wait(0.002), [])
            windows.append(self.loop._window)
        self.assertEqual(windows[:5], [50e-6, 25e-6, 12.5e-6, 6.25e-6, 3.125e-6])
        self.assertEqual(windows[5:], [0, 0])
        before = self.yields
        self.wait(0.002)
        self.assertEqual(self.yields, before, "a closed window polls no more")

    def test_polling_stops_where_the_window_ends(self):
        self.clock.step = 10e-6
        self.wait(0.002)
        self.assertLessEqual(self.yields, 6)  # 100 µs at 10 µs a reading, two readings a look

    def test_polling_never_outlasts_a_timer_due_sooner(self):
        self.wait(0.00003)  # a timer 30 µs away, inside the 100 µs window
        self.assertLessEqual(self.yields, 16)  # 30 µs at 1 µs a reading, two readings a look

    def test_a_message_soon_after_the_sleep_opens_the_window_again(self):
        self.loop._window = 0
        windows = []
        for _ in range(3):
            # Sent 5 ms on (real time), after the polling: the fake clock says the wait took the window and a few µs.
            threading.Timer(0.005, self.b.send, (b"x",)).start()
            self.assertTrue(self.wait(-1))
            windows.append(self.loop._window)
        self.assertEqual(windows, [25e-6, 50e-6, 100e-6])

    def test_a_message_long_after_the_sleep_narrows_the_window(self):
        def late():
            self.clock.now += 1e-3  # the loop slept 1 ms before this came: longer than the widest window
            self.b.send(b"x")

        threading.Timer(0.005, late).start()
        self.assertTrue(self.wait(-1))
        self.assertEqual(self.loop._window, 50e-6)

    def test_a_cpu_shared_with_another_task_closes_the_window_for_a_while(self):
        def another_task_runs(n):
            self.clock.now += 20e-6  # the yield let someone else run here for 20 µs
            self.b.send(b"x")  # and the message came meanwhile

        self.on_yield = another_task_runs
        for _ in range(guest_loop._SHARED_IN_A_ROW - 1):
            self.assertTrue(self.wait(-1))
        self.assertEqual(self.loop._window, 100e-6, "once or twice is chance: the window stays")
        self.assertTrue(self.wait(-1))
        self.assertEqual(self.loop._window, 0)
        before = self.yields
        for _ in range(guest_loop._SHARED_PAUSE):
            self.b.send(b"x")  # soon after the sleep: would open the window again, but not yet
            self.assertTrue(self.wait(-1))
        self.assertEqual(self.loop._window, 0, "closed on a shared CPU: the loop sleeps at once for a while")
        self.assertEqual(self.yields, before)
        self.b.send(b"x")
        self.assertTrue(self.wait(-1))
        self.assertEqual(self.loop._window, 25e-6, "then the window may open again")

    def test_no_idle_poll_never_yields(self):
        self.loop.set_idle_poll(0)
        for _ in range(3):
            self.assertEqual(self.wait(0.001), [])
        self.assertEqual(self.yields, 0)

    def test_the_widest_window_is_checked(self):
        for bad in (-1e-6, 2e-3, True, "0.0001", None):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                self.loop.set_idle_poll(bad)
        self.loop.set_idle_poll(guest_loop.MAX_IDLE_POLL)
        self.assertEqual(self.loop.idle_poll, 1e-3)
