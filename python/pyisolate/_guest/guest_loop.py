"""The guest's event loop: asyncio's selector loop, with the turns of an epoll wait done in fewer Python steps.

Each turn of asyncio's loop (`_run_once`) goes through the selector's `select`, which builds a list of (key, mask)
pairs, then `_process_events`, which turns them into ready handles, then back out to `run_forever`; a small call
costs the guest one such turn. Here a turn reads epoll's own (fd, mask) list and queues the handles from it, and the
turns follow each other inside one `_run_once` until the loop is told to stop. What runs, in which order and when, is
asyncio's: the same ready queue, timer heap, timeouts rounded up to epoll's milliseconds, the same handles run by
`Handle._run` (which reports their exceptions). Debug mode and a heap of more than asyncio's purge threshold of timers
take asyncio's own turn. Measured on one CPU (decision 62): an echo over add_reader 17.4-17.7 -> 16.8-16.9 µs a round
trip, a whole small call 1.4-2.5 µs faster (2.5 µs split across two CPUs).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import select
import selectors
from asyncio import base_events

# asyncio's own limits (base_events): the longest wait, and the heap size past which it may purge cancelled timers.
_LONGEST_WAIT = base_events.MAXIMUM_SELECT_TIMEOUT
_PURGE_ABOVE = base_events._MIN_SCHEDULED_TIMER_HANDLES

_NOT_OUT = ~select.EPOLLOUT  # a mask with anything but EPOLLOUT (in, hang-up, error) wakes a reader, as selectors say
_NOT_IN = ~select.EPOLLIN  # and anything but EPOLLIN a writer


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The guest's loop where epoll exists (Linux), else asyncio's default."""
    if not hasattr(select, "epoll"):
        return asyncio.new_event_loop()
    return GuestLoop()


class GuestLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = selectors.EpollSelector()
        super().__init__(selector)
        # The selector's epoll object and its fd -> SelectorKey map (selectors' attributes on Python 3.5 to 3.13):
        # registration stays the selector's; only the wait and the reading of its answer are done here.
        self._poll = selector._selector.poll
        self._keys = selector._fd_to_key

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
                events = self._poll(timeout, len(keys) or 1)
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
