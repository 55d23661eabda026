"""Micro-batching for a server: one worker thread owns the model; callers submit jobs and wait on futures.

The worker takes the oldest waiting job, then gathers more jobs *with the same key* (the same options: only those
can share a forward pass) until it holds ``max_batch`` of them or ``max_delay`` has passed since the first one
arrived, and hands them to ``run_batch`` at once. Jobs with another key wait, in arrival order, for a later batch.
While a batch runs, new jobs queue up, so under load batches fill without waiting: throughput grows with
concurrency. Nothing here knows about torch or HTTP.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More jobs are waiting than the batcher accepts (the server answers 503: try later)."""


class NotReady(Exception):
    """The worker has not finished ``setup`` (still loading), failed in it, or has stopped."""


@dataclass
class Job:
    """One request's work: jobs with equal ``key`` may run in one batch (``batchable=False``: always alone)."""

    key: Hashable
    payload: Any
    batchable: bool = True
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


# run_batch(state, key, payloads) -> one result per payload, in order; an Exception instance is that job's error
RunBatch = Callable[[Any, Hashable, Sequence[Any]], Sequence[Any]]


class MicroBatcher:
    """A worker thread that runs ``setup()`` once (load the model; its result is the ``state`` every batch gets),
    then runs batches of submitted jobs through ``run_batch``.

    Args:
        setup: Called in the worker thread before any job; what it returns is passed to ``run_batch``.
        run_batch: Runs jobs of one key together (see :data:`RunBatch`).
        max_batch: At most this many jobs a batch.
        max_delay: Seconds a batch waits for more jobs after its first job arrived.
        max_queue: Jobs waiting beyond this are refused with :class:`QueueFull`.
        on_batch: Called with each batch's size, key and seconds taken (for metrics).
    """

    def __init__(
        self,
        setup: Callable[[], Any],
        run_batch: RunBatch,
        *,
        max_batch: int = 8,
        max_delay: float = 0.01,
        max_queue: int = 1024,
        on_batch: Callable[[int, Hashable, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, not {max_batch}")
        if max_delay < 0:
            raise ValueError(f"max_delay must be >= 0, not {max_delay}")
        self.setup, self.run_batch, self.on_batch = setup, run_batch, on_batch
        self.max_batch, self.max_delay, self.max_queue = max_batch, max_delay, max_queue
        self.state: Any = None
        self.error: BaseException | None = None  # what setup raised
        self.ready = threading.Event()  # set once setup has succeeded
        self.done = threading.Event()  # set once setup has ended, either way
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # None: stop
        self._pending: deque[Job] = deque()  # taken from the queue but left for a batch of their own key
        self._stopping = False
        self._waiting = 0  # submitted and not yet in a batch
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="mumo-model-worker", daemon=True)

    @property
    def waiting(self) -> int:
        """Jobs submitted and not yet running."""
        return self._waiting

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Finish the running batch, fail the jobs still waiting (NotReady) and end the worker."""
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, key: Hashable, payload: Any, *, batchable: bool = True) -> Future:
        """Queue one job; its future gets ``run_batch``'s result for it (or its exception)."""
        if self._stopping or self.error is not None or not self.ready.is_set():
            raise NotReady(self.not_ready_reason())
        with self._lock:
            if self._waiting >= self.max_queue:
                raise QueueFull(f"{self._waiting} requests are waiting, the limit is {self.max_queue}")
            self._waiting += 1
        job = Job(key, payload, batchable)
        self._queue.put(job)
        return job.future

    def not_ready_reason(self) -> str:
        """Why jobs are refused: loading, failed to load, or stopping."""
        if self._stopping:
            return "the server is shutting down"
        if self.error is not None:
            return f"the model failed to load: {self.error}"
        return "the model is still loading"

    # the worker thread

    def _work(self) -> None:
        try:
            self.state = self.setup()
        except BaseException as exc:  # reported by /readyz and the server's log
            log.error("setup failed: %s", exc)
            self.error = exc
            self.done.set()
            return
        self.ready.set()
        self.done.set()
        while True:
            jobs = self._next_batch()
            if jobs is None:
                break
            self._run(jobs)
        for job in [*self._pending, *self._drain()]:  # stopped: nothing more runs
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(NotReady("the server is shutting down"))

    def _drain(self) -> list[Job]:
        jobs = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return jobs
            if job is not None:
                jobs.append(job)

    def _next_batch(self) -> list[Job] | None:
        """The next batch: the oldest job and up to max_batch - 1 more of its key, or None to stop."""
        first = self._pending.popleft() if self._pending else self._queue.get()
        if first is None or self._stopping:
            if first is not None:
                self._pending.appendleft(first)
            return None
        batch = [first]
        if first.batchable:
            for job in list(self._pending):  # waiting jobs of this key join first, in arrival order
                if len(batch) == self.max_batch:
                    break
                if job.batchable and job.key == first.key:
                    self._pending.remove(job)
                    batch.append(job)
            deadline = first.arrived + self.max_delay
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:  # past the deadline: still take what is already queued, without waiting
                    job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:  # stop: run this batch first
                    self._stopping = True
                    self._queue.put(None)
                    break
                if job.batchable and job.key == first.key:
                    batch.append(job)
                else:
                    self._pending.append(job)
        with self._lock:
            self._waiting -= len(batch)
        return batch

    def _run(self, jobs: list[Job]) -> None:
        jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]  # a cancelled wait needs no answer
        if not jobs:
            return
        start = time.perf_counter()
        try:
            results = self.run_batch(self.state, jobs[0].key, [j.payload for j in jobs])
            if len(results) != len(jobs):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(jobs)} jobs")
        except Exception as exc:  # every job of the batch gets it; the worker goes on
            log.exception("a batch of %d failed", len(jobs))
            results = [exc] * len(jobs)
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        if self.on_batch is not None:
            self.on_batch(len(jobs), jobs[0].key, time.perf_counter() - start)
