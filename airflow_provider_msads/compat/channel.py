"""Calls that may talk to the task's supervisor, run in worker threads one at a time on Airflow 3.0.

Inside an Airflow 3 task, reading a connection or a Variable and masking a secret are requests to
the supervisor over one channel (``task_runner.SUPERVISOR_COMMS``). Airflow 3.0's channel has no
lock (3.1 added one): two worker threads that use it at once cross their answers, and under
``dag.test()`` the in-process channel of 3.0 even deletes itself (``NameError: SUPERVISOR_COMMS``;
each request removes the global while it is handled and puts back what it found). The async
paths read connections and token state in worker threads, several at once when a Bulk task
downloads accounts concurrently; on 3.0 those calls go through :func:`to_thread_on_channel`.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@functools.cache
def channel_is_thread_safe() -> bool:
    """False on Airflow 3.0.x only: 2 has no channel, 3.1+ locks it (``CommsDecoder._thread_lock``)."""
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # the pure core used without Airflow: no channel
        return True
    parts = tuple(int(p) for p in airflow_version.split("+")[0].split(".")[:2] if p.isdigit())
    return parts != (3, 0)


def _lock(loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock


async def to_thread_on_channel(fn: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread(fn, *args)``; on Airflow 3.0, one such call at a time per event loop.

    The lock is waited for on the loop, never in a thread. A caller cancelled while its call runs
    gets the cancellation at once, but the lock is held until the thread is done: the next call
    never shares the channel with it.
    """
    if channel_is_thread_safe():
        return await asyncio.to_thread(fn, *args)
    lock = _lock(asyncio.get_running_loop())
    await lock.acquire()
    try:
        call = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    except BaseException:
        lock.release()
        raise
    call.add_done_callback(_release(lock))
    return await asyncio.shield(call)


def _release(lock: asyncio.Lock) -> Callable[[asyncio.Future[Any]], None]:
    def done(call: asyncio.Future[Any]) -> None:
        lock.release()
        if not call.cancelled():
            call.exception()  # retrieved here too: a cancelled caller never reads it

    return done
