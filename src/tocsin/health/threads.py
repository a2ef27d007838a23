"""Run a blocking check in a thread, never more than one call of it at a time.

A thread cannot be cancelled: when a sync driver hangs connecting to a
black-holed database, the check times out but its thread stays blocked until
the driver gives up. Starting a new thread at every probe would pile them up
and, in the loop's default executor, starve the app's own ``to_thread`` calls.
So each blocking check owns at most one call in flight: a run that finds the
previous call still blocked waits for that same call (and times out again),
and the calls use a small pool of their own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

_POOL_SIZE = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_SIZE,
                                       thread_name_prefix="tocsin-health")
        return _pool


class BlockingCall(Generic[T]):
    """An async callable running ``function`` in a thread, one call at a time."""

    def __init__(self, function: Callable[[], T]) -> None:
        self._function = function
        self._lock = threading.Lock()
        self._future: Future[T] | None = None

    async def __call__(self) -> T:
        with self._lock:
            if self._future is None or self._future.done():
                self._future = _executor().submit(self._function)
            future = self._future
        return await asyncio.wrap_future(future)
