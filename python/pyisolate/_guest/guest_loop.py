"""The guest's event loop: asyncio's selector loop, with the turns of an epoll wait done in fewer Python steps.

Each turn of asyncio's loop (`_run_once`) goes through the selector's `select`, which builds a list of (key, mask)
pairs, then `_process_events`, which turns them into ready handles, then back out to `run_forever`; a small call
costs the guest one such turn. Here a turn reads epoll's own (fd, mask) list and queues the handles from it, and the
turns follow each other inside one `_run_once` until the loop is told to stop. What runs, in which order and when, is
asyncio's: the same ready queue, timer heap, timeouts rounded up to epoll's milliseconds, the same handles run by
`Handle._run` (which reports their exceptions). Debug mode and a heap of more than asyncio's purge threshold of timers
take asyncio's own turn. Measured on one CPU (decision 62): an echo over add_reader 17.4-17.7 -> 16.8-16.9 µs a round
trip, a whole small call 1.4-2.5 µs faster (2.5 µs split across two CPUs).

Before it sleeps, the loop polls for a while (decision 63): a message that arrives within the window is taken without
the sleep and the wake-up, which on a VM whose idle vCPUs halt cost a round trip 50-60 µs (a small call across two
vCPUs 73 -> 25 µs). The window adapts as KVM's halt polling does: a message that came after the window closed but
within the widest window widens it (doubling, up to the widest), a longer wait halves it, down to none; so a loop
whose messages come further apart than the widest window soon polls no more, and one answering a caller who waits
on it keeps polling. It yields the CPU before each look; yields during which another task ran, several waits in a
row (the host, when both share one CPU), close the window for a while: there sleeping costs no more than polling,
which would only take turns with the host.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import select
import selectors
import time
from asyncio import base_events

# asyncio's own limits (base_events): the longest wait, and the heap size past which it may purge cancelled timers.
_LONGEST_WAIT = base_events.MAXIMUM_SELECT_TIMEOUT
_PURGE_ABOVE = base_events._MIN_SCHEDULED_TIMER_HANDLES

DEFAULT_IDLE_POLL = 100e-6  # seconds a loop polls for a message before it sleeps, at most (the host's default too)
MAX_IDLE_POLL = 1e-3  # the most a host may ask for
_SHORTEST_POLL = 2e-6  # a window halved below this is closed: the loop sleeps at once
_OTHERS_RAN = 5e-6  # a yield that took this long let another task run on this CPU: polling on only takes turns
_SHARED_IN_A_ROW = 4  # polls in a row that found another task on this CPU: it is shared, the window closes
_SHARED_PAUSE = 256  # waits that then sleep at once (then polling is tried again)
_monotonic = time.monotonic
_yield = os.sched_yield

_NOT_OUT = ~select.EPOLLOUT  # a mask with anything but EPOLLOUT (in, hang-up, error) wakes a reader, as selectors say
_NOT_IN = ~select.EPOLLIN  # and anything but EPOLLIN a writer


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The guest's loop where epoll exists (Linux), else asyncio's default."""
    if not hasattr(select, "epoll"):
        return asyncio.new_event_loop()
    return GuestLoop()


class GuestLoop(asyncio.SelectorEventLoop):
    def __init__(self, idle_poll: float = DEFAULT_IDLE_POLL) -> None:
        selector = selectors.EpollSelector()
        super().__init__(selector)
        # The selector's epoll object and its fd -> SelectorKey map (selectors' attributes on Python 3.5 to 3.13):
        # registration stays the selector's; only the wait and the reading of its answer are done here.
        self._poll = selector._selector.poll
        self._keys = selector._fd_to_key
        self.set_idle_poll(idle_poll)

    def set_idle_poll(self, seconds: float) -> None:
        """Poll for a message up to `seconds` (at most MAX_IDLE_POLL) before sleeping; 0: sleep at once."""
        if type(seconds) not in (int, float) or not 0 <= seconds <= MAX_IDLE_POLL:
            raise ValueError(f"idle poll must be from 0 to {MAX_IDLE_POLL} s, got {seconds!r}")
        self.idle_poll = self._window = seconds
        self._closed_for = 0  # waits left before the window may open again (it closed on a shared CPU)
        self._shared_in_a_row = 0  # waits in a row whose polling found another task running on this CPU

    def _wait(self, timeout: float, most: int):
        """epoll's events within `timeout` (-1: none), polled for first while the window is open."""
        if timeout == 0 or not self.idle_poll:
            return self._poll(timeout, most)
        if self._closed_for:  # the window closed on a shared CPU: sleep at once for a while
            self._closed_for -= 1
            return self._poll(timeout, most)
        start = _monotonic()
        if self._window:
            events = self._poll(0, most)
            if events:
                return events  # here already (on one CPU the host often ran first): no need to poll on
            events, shared = self._poll_for(timeout, most, start)
            if shared:
                # Another task ran here while the loop yielded: polling on would only take turns with it. Once is
                # chance (a kernel thread); several waits in a row, the host shares this CPU.
                self._shared_in_a_row += 1
                if self._shared_in_a_row >= _SHARED_IN_A_ROW:
                    self._close_for_a_while()
                return events or self._poll(self._left(timeout, start), most)
            self._shared_in_a_row = 0
            if events:
                return events  # caught while polling: the window stays as it is
            timeout = self._left(timeout, start)
        events = self._poll(timeout, most)
        # One verdict per wait, as KVM's halt polling gives one per halt: a message within the widest window (the
        # wake-up included) would have been caught by a wider one; a later one, or none, by none.
        if events and _monotonic() - start <= self.idle_poll:
            self._widen()
        else:
            self._narrow()
        return events

    @staticmethod
    def _left(timeout: float, start: float) -> float:
        """What is left of `timeout` (-1: none) since `start`."""
        return timeout if timeout < 0 else max(0, timeout - (_monotonic() - start))

    def _poll_for(self, timeout: float, most: int, start: float):
        """(events, shared): polls, yielding the CPU before each look, until a message, the window's end or a yield
        during which another task ran here (shared: polling on would only take turns with it)."""
        end = start + (self._window if timeout < 0 else min(self._window, timeout))
        while True:
            yielded = _monotonic()
            _yield()  # on one CPU the host, woken by the reply just sent, answers before the next look
            events = self._poll(0, most)
            now = _monotonic()
            shared = now - yielded > _OTHERS_RAN
            if events or shared or now >= end:
                return events, shared

    def _narrow(self) -> None:
        """Halve the window, closing it below the shortest."""
        half = self._window / 2
        self._window = half if half >= _SHORTEST_POLL else 0

    def _close_for_a_while(self) -> None:
        """Close the window for _SHARED_PAUSE waits: this CPU is shared (then it opens as after a short sleep)."""
        self._window = 0
        self._closed_for = _SHARED_PAUSE
        self._shared_in_a_row = 0

    def _widen(self) -> None:
        """Double the window, from a quarter of the widest, up to it."""
        self._window = min(self.idle_poll, max(2 * self._window, self.idle_poll / 4))

    def _run_once(self) -> None:
        if self._debug or len(self._scheduled) > _PURGE_ABOVE:
            return super()._run_once()
        ready = self._ready
        scheduled = self._scheduled
        keys = self._keys
        while True:
            while scheduled and scheduled[0]._cancelled:
                self._timer_cancelled_count -= 1
                heapq.heappop(scheduled)._scheduled = False
            if ready or self._stopping:
                timeout = 0
            elif scheduled:
                wait = min(scheduled[0]._when - self.time(), _LONGEST_WAIT)
                timeout = math.ceil(wait * 1e3) * 1e-3 if wait > 0 else 0  # at least the time asked, as selectors
            else:
                timeout = -1
            try:
                events = self._wait(timeout, len(keys) or 1)
            except InterruptedError:
                events = ()
            for fd, mask in events:
                key = keys.get(fd)
                if key is None:
                    continue
                reader, writer = key.data
                if mask & _NOT_OUT and reader is not None:
                    if reader._cancelled:
                        self._remove_reader(key.fileobj)
                    else:
                        ready.append(reader)
                if mask & _NOT_IN and writer is not None:
                    if writer._cancelled:
                        self._remove_writer(key.fileobj)
                    else:
                        ready.append(writer)
            events = None
            if scheduled:
                end = self.time() + self._clock_resolution
                while scheduled and scheduled[0]._when < end:
                    handle = heapq.heappop(scheduled)
                    handle._scheduled = False
                    ready.append(handle)
            # The handles ready now run; those they make ready run in the next turn, after another poll.
            for _ in range(len(ready)):
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
            handle = None  # no cycle through an exception's frame
            # Where asyncio would go back to run_forever and start the next turn, the next turn starts here; run_forever
            # is returned to when it is to stop, or when the next turn is asyncio's own.
            if self._stopping or self._debug or len(scheduled) > _PURGE_ABOVE:
                return
