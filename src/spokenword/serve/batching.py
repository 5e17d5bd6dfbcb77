"""Dynamic micro-batching: requests that arrive within a few milliseconds share one model call.

:class:`MicroBatcher` collects the items submitted on the event loop; the first item of a batch
starts a timer of ``window_s`` seconds, and the batch is handed to a worker thread (``run_batch``)
when the timer fires or when ``max_batch`` items are waiting, whichever comes first. Batches run in
the thread pool, so one batch can gather while the previous one is computed. ``run_batch`` gets
the list of items and returns one result per item, in order: a value, or an exception instance
that is raised to that item's caller only (one bad upload never fails the others of its batch).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence

from starlette.concurrency import run_in_threadpool


class MicroBatcher:
    """Group concurrent submissions into batches (see module docstring).

    Args:
        run_batch: ``items -> results`` (same length and order; exceptions returned, not raised),
            called in a worker thread.
        window_s: how long the first item of a batch waits for others (s); 0 batches only what
            arrived in the same turn of the event loop.
        max_batch: a batch is dispatched at once when this many items wait.
    """

    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], window_s: float = 0.002, max_batch: int = 16):
        if window_s < 0 or max_batch < 1:
            raise ValueError("window_s must be >= 0 and max_batch >= 1")
        self.run_batch = run_batch
        self.window_s = window_s
        self.max_batch = max_batch
        self._open: _Batch | None = None  # the batch gathering now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task] = set()
        #: sizes of the batches run so far (the last 1000 to 2000), for tests and tuning.
        self.sizes: list[int] = []

    async def submit(self, item: Any) -> Any:
        """Queue ``item``; returns its result (or raises its exception) once its batch has run."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (e.g. a second test client): start afresh there
            self._loop, self._open = loop, None
        future = loop.create_future()
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            batch.timer = loop.call_later(self.window_s, self._dispatch, batch)
        batch.items.append((item, future))
        if len(batch.items) >= self.max_batch:
            self._dispatch(batch)
        return await future

    def _dispatch(self, batch: "_Batch") -> None:
        """Hand ``batch`` to a worker thread (once; on the loop that made it)."""
        if batch.dispatched:
            return
        batch.dispatched = True
        if batch.timer is not None:
            batch.timer.cancel()
        if self._open is batch:
            self._open = None
        self.sizes.append(len(batch.items))
        if len(self.sizes) > 2000:
            del self.sizes[:1000]
        task = asyncio.get_running_loop().create_task(self._run(batch.items))
        self._running.add(task)  # keep a reference until done (the loop holds tasks weakly)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            results = await run_in_threadpool(self.run_batch, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} items")
        except BaseException as err:  # noqa: BLE001 - every waiting caller gets the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(err if isinstance(err, Exception) else RuntimeError("batch cancelled"))
            if not isinstance(err, Exception):
                raise
            return
        for (_, future), result in zip(batch, results):
            if future.done():  # the caller went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


class _Batch:
    """Items waiting together: ``(item, future)`` pairs, the window's timer, whether it was sent."""

    __slots__ = ("items", "timer", "dispatched")

    def __init__(self):
        self.items: list[tuple[Any, asyncio.Future]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.dispatched = False
