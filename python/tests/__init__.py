"""Tests of the Python guest runtime (unittest; real sockets and processes, no mocks)."""

import asyncio

from pyisolate._guest import guest_loop


class _GuestLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Every loop the suite makes is the one the guest runs on (guest_loop.py)."""

    def new_event_loop(self):
        return guest_loop.new_event_loop()


asyncio.set_event_loop_policy(_GuestLoopPolicy())
