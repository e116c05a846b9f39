"""Tasks that start at once: a call whose coroutine returns without waiting is answered with no trip around the loop.

Python 3.12+ has this built in (`Task(eager_start=True)`). On older versions a task's first step is a callback that
`create_task` queues on the loop's ready queue; run from a protocol callback (no task is current there), taking that
one callback off the queue and running it now is what eager start does: the step makes the task current, runs the
coroutine to its first wait, and schedules the rest as usual. Where the loop is not asyncio's own (no `_ready`
deque) or something else was queued with it, the task is left to start on the loop's next pass.
"""

from __future__ import annotations

import asyncio
import sys

_BUILT_IN = sys.version_info >= (3, 12)


def start_task(loop, coro):
    """A task running `coro`, already stepped to its first wait where the loop allows; `(task, started)`."""
    if _BUILT_IN:
        task = asyncio.Task(coro, loop=loop, eager_start=True)
        return task, True
    ready = getattr(loop, "_ready", None)
    if ready is None or asyncio.current_task(loop) is not None:
        return loop.create_task(coro), False
    queued = len(ready)
    task = loop.create_task(coro)
    if len(ready) != queued + 1:  # a task factory queued more, or nothing: not ours to run
        return task, False
    ready.pop()._run()  # the task's first step, as the loop would have run it (its context, its error handling)
    return task, True
