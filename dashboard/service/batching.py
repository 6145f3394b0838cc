"""Micro-batching: rows of concurrent requests for the same version coalesced into one validation and one model
call (as TF Serving and BentoML do), each request then given back its own rows.

A request that finds no batch of its version running goes at once (no added latency when traffic is light);
while one runs, arrivals wait for it to finish (at most `wait` seconds, less once `max_rows` rows are waiting)
and then go together. The work runs in a worker thread, so the event loop never waits for the model — except a lone
request of a few rows while the model is free: that one runs on the loop (a thread hop is ~0.1 ms of a ~2 ms
answer), and goes to a thread after all if the model turns out busy (loading.runtime.not_waiting). Rows are
validated one by one as always, so a bad row in one request never fails its neighbours'; a batch that fails as a
whole is tried again request by request, so only the request that caused it fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dashboard import service
from dashboard.common import metrics
from dashboard.loading.runtime import ModelBusy, not_waiting
from dashboard.prediction.scoring import BatchResult
from dashboard.prediction.validate import RangeWarning
from dashboard.service import Served


@dataclass(frozen=True)
class Part:
    """One request's rows of a batch result: rows start..stop of result.table."""

    result: BatchResult
    start: int
    stop: int

    @property
    def table(self) -> pd.DataFrame:
        """This request's rows of the output table, indexed from 0."""
        return self.result.table.iloc[self.start : self.stop].reset_index(drop=True)

    @property
    def good(self) -> np.ndarray:
        """Which of this request's rows were predicted."""
        return self.result.good[self.start : self.stop]

    @property
    def errors(self) -> np.ndarray:
        """This request's error per row ("" where predicted)."""
        return self.result.errors[self.start : self.stop]

    @property
    def values(self) -> np.ndarray:
        """The model's outputs of this request's predicted rows, in order (a view of the batch's array)."""
        good = self.result.good[self.start : self.stop]
        if not good.any():
            return self.result.values[:0]
        before = int(self.result.positions[self.start]) + 1 - int(good[0])  # predicted rows ahead of this request's
        return self.result.values[before : before + int(good.sum())]

    @property
    def warnings(self) -> list[RangeWarning]:
        """This request's range warnings, with row numbers of its own."""
        return [
            RangeWarning(w.row - self.start, w.feature, w.value, w.bound, w.limit)
            for w in self.result.warnings
            if self.start <= w.row < self.stop
        ]


@dataclass
class _Job:
    rows: Sequence[Mapping[str, Any]]
    future: asyncio.Future


@dataclass
class MicroBatcher:
    """Coalesces concurrent predictions per served version (see the module docstring)."""

    wait: float = 0.002
    max_rows: int = 4096
    inline_rows: int = 16  # a batch this small runs on the event loop when the model is free
    _pending: dict[str, list[_Job]] = field(default_factory=dict)
    _running: dict[str, int] = field(default_factory=dict)
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def predict(self, served: Served, rows: Sequence[Mapping[str, Any]]) -> Part:
        """This request's rows, predicted together with whatever else arrived in the same few milliseconds."""
        loop = asyncio.get_running_loop()
        job = _Job(rows, loop.create_future())
        key = f"{served.version.identity}/{served.runtime}"
        queue = self._pending.setdefault(key, [])
        queue.append(job)
        if not self._running.get(key) or sum(len(j.rows) for j in queue) >= self.max_rows:
            self._flush(key, served)
        elif len(queue) == 1:
            loop.call_later(self.wait, self._flush, key, served)
        return await job.future

    def _flush(self, key: str, served: Served) -> None:
        jobs = self._pending.pop(key, None)
        if jobs:
            self._running[key] = self._running.get(key, 0) + 1
            task = asyncio.ensure_future(self._run(key, served, jobs))
            self._tasks.add(task)  # a reference, so the task is not collected mid-flight
            task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, served: Served, jobs: list[_Job]) -> None:
        metrics.BATCH_ROWS.observe(sum(len(job.rows) for job in jobs))
        try:
            await self._work(served, jobs)
        finally:
            self._running[key] -= 1
            if not self._running[key] and self._pending.get(key):
                self._flush(key, served)  # those who waited for this batch go now, together

    async def _work(self, served: Served, jobs: list[_Job]) -> None:
        rows = [row for job in jobs for row in job.rows]
        try:
            result = await self._predict(served, rows, alone=len(jobs) == 1)
        except Exception as exc:
            if len(jobs) > 1:  # one request's rows may be what fails: each request alone, so only its sender hears
                for job in jobs:
                    await self._work(served, [job])
                return
            if not jobs[0].future.done():  # this request alone fails (or the model itself does, for everyone)
                jobs[0].future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            stop = start + len(job.rows)
            if not job.future.done():
                job.future.set_result(Part(result, start, stop))
            start = stop

    async def _predict(self, served: Served, rows: list[Mapping[str, Any]], alone: bool) -> BatchResult:
        # on the loop: a lone request (light traffic: under load requests share batches, and the loop stays free for
        # the page and the other requests), a few rows, no images (decoding one is no job for the loop)
        if alone and len(rows) <= self.inline_rows and not served.schema.images:
            try:
                with not_waiting():
                    return service.predict_rows(served, rows)
            except ModelBusy:
                pass  # validated again in the thread: a few rows, and only when a large batch holds the model
        return await asyncio.to_thread(service.predict_rows, served, rows)
