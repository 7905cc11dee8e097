"""In-flight render jobs: coalescing, cancellation and bounded admission.

One Job renders one distinct view state; every caller asking for that state while it is in
flight subscribes to it and receives all its frames (identical requests are rendered once).
A Job is cancelled when its last subscriber leaves: the caller cancelled, or a newer request
arrived for the same viewport (latest wins). Workers check `job.cancelled` between rungs.
At most `queue_limit` jobs are admitted (waiting for a worker or running); beyond that a new
view is refused with QueueFull rather than piled up.

Settling: while a viewer drags, each view is superseded a few milliseconds after its preview. So
after a job's preview, if everybody following it follows a viewport, its full frame waits
`settle_s` (SETTLE_S) for a newer request on that viewport: one arriving cancels the job before it
renders a full frame nobody would see. Callers without a viewport cannot be superseded and never
wait. The wait holds no worker: a settler thread hands the step back when it is due.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator

from .errors import QueueFull
from .metrics import RenderMetrics

# How long a viewport's full frame waits after its preview for a newer view of that viewport:
# longer than the gap between a drag's pointer events (about 16 ms at 60 Hz), short next to a
# full frame's render time, so a view that stays still hardly waits.
SETTLE_S = 0.025


class Job:
    def __init__(self, key: bytes, request) -> None:
        self.key = key
        self.request = request
        self.cancelled = threading.Event()
        self._cond = threading.Condition()
        self._frames: list = []
        self._subscribers: set[Subscription] = set()
        self._done = False
        self.error: BaseException | None = None

    def publish(self, frame) -> None:
        with self._cond:
            self._frames.append(frame)
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.error = error
            self._done = True
            self._cond.notify_all()

    @property
    def done(self) -> bool:
        return self._done

    def follows_viewports(self) -> bool:
        """Whether every current subscriber follows a viewport (and could be superseded)."""
        with self._cond:
            return bool(self._subscribers) and all(sub.viewport_id for sub in self._subscribers)

    def _add(self, sub: Subscription) -> None:
        with self._cond:
            self._subscribers.add(sub)

    def _remove(self, sub: Subscription) -> None:
        with self._cond:
            self._subscribers.discard(sub)
            if not self._subscribers and not self._done:
                self.cancelled.set()
            self._cond.notify_all()

    def _next(self, sub: Subscription, index: int):
        """Frame number `index`, waiting for it; None when there will be none for `sub`."""
        with self._cond:
            while True:
                if sub.closed:
                    return None
                if index < len(self._frames):
                    return self._frames[index]
                if self._done:
                    if self.error is not None:
                        raise self.error
                    return None
                self._cond.wait()


class Subscription:
    """One caller's view of a job: iterate it for the frames."""

    def __init__(self, hub: JobHub, job: Job, viewport_id: str) -> None:
        self.hub = hub
        self.job = job
        self.viewport_id = viewport_id
        self.closed = False

    def __iter__(self) -> Iterator:
        index = 0
        try:
            while (frame := self.job._next(self, index)) is not None:
                yield frame
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        """Leave the job (idempotent); the job stops when nobody is left."""
        if self.closed:
            return
        self.closed = True
        self.hub._release(self)
        self.job._remove(self)
        if self.job.cancelled.is_set():
            self.hub._wake_settler()  # a settling job nobody wants can be dropped now


class JobHub:
    """Admits jobs and runs them on `workers` threads, one ladder step at a time.

    `work(job)` is a generator that yields after each step it has published. Steps wait in one
    priority queue ordered by how far their job has got: every job's first step (the preview) runs
    before any job's second (the full frame), so a newly moved view shows something quickly even
    while other views are being rendered at full size. Between its first and second steps a job
    following viewports settles for `settle_s` (see the module docstring).
    """

    def __init__(
        self,
        work: Callable[[Job], Iterator[None]],
        workers: int,
        queue_limit: int,
        metrics: RenderMetrics,
        settle_s: float = SETTLE_S,
    ) -> None:
        if not (math.isfinite(settle_s) and settle_s >= 0):
            raise ValueError(f"settle_s must be a finite number of seconds >= 0, got {settle_s}")
        self._work = work
        self.queue_limit = queue_limit
        self.settle_s = settle_s
        self._metrics = metrics
        self._lock = threading.Lock()
        self._jobs: dict[bytes, Job] = {}
        self._viewports: dict[str, Subscription] = {}
        self._steps: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()  # FIFO among steps of the same rank; never compares jobs
        # Settling steps: (due, order, rank, job, steps), guarded by _settle_cond.
        self._settling: list = []
        self._settle_cond = threading.Condition()
        self._settler_stop = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"render-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        self._settler = threading.Thread(target=self._settle_loop, name="render-settle", daemon=True)
        self._settler.start()

    @property
    def depth(self) -> int:
        return len(self._jobs)

    def subscribe(self, key: bytes, request, viewport_id: str = "") -> Subscription:
        superseded = None
        start = False
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.cancelled.is_set():
                self._metrics.coalesced.inc()
            else:
                if len(self._jobs) >= self.queue_limit:
                    self._metrics.rejected.inc()
                    raise QueueFull(
                        f"render queue full: {len(self._jobs)} views in progress "
                        f"(VOXCAST_RENDER_QUEUE={self.queue_limit}); retry shortly"
                    )
                job = Job(key, request)
                self._jobs[key] = job
                self._metrics.queue_depth.set(len(self._jobs))
                start = True
            sub = Subscription(self, job, viewport_id)
            job._add(sub)
            if viewport_id:
                previous = self._viewports.get(viewport_id)
                if previous is not None and previous.job is not job:
                    superseded = previous
                self._viewports[viewport_id] = sub
        if superseded is not None:
            superseded.close()
        if start:
            self._steps.put((0, next(self._order), job, None))
        return sub

    def _worker(self) -> None:
        while True:
            rank, _, job, steps = self._steps.get()
            if job is None:  # shutdown
                return
            try:
                if steps is None:
                    steps = self._work(job)
                if job.cancelled.is_set():
                    steps.close()
                    self._finish(job, None)
                    continue
                next(steps)
            except StopIteration:
                self._finish(job, None)
            except BaseException as exc:  # every subscriber is told, the worker thread survives
                self._finish(job, exc)
            else:
                if rank == 0 and self.settle_s > 0 and job.follows_viewports():
                    self._settle(rank + 1, job, steps)
                else:
                    self._steps.put((rank + 1, next(self._order), job, steps))

    # -- settling ----------------------------------------------------------------------------

    def _settle(self, rank: int, job: Job, steps) -> None:
        with self._settle_cond:
            if self._settler_stop:  # stopping: no more waiting
                self._steps.put((rank, next(self._order), job, steps))
                return
            due = time.monotonic() + self.settle_s
            self._settling.append((due, next(self._order), rank, job, steps))
            self._settle_cond.notify()

    def _wake_settler(self) -> None:
        with self._settle_cond:
            self._settle_cond.notify()

    def _settle_loop(self) -> None:
        """Hand settled steps back to the workers when due; drop cancelled ones at once."""
        while True:
            with self._settle_cond:
                while True:
                    now = time.monotonic()
                    ready = [e for e in self._settling if e[0] <= now or e[3].cancelled.is_set()]
                    if ready or self._settler_stop:
                        break
                    timeout = min(e[0] for e in self._settling) - now if self._settling else None
                    self._settle_cond.wait(timeout)
                stopping = self._settler_stop
                if stopping:
                    ready = self._settling
                taken = {e[1] for e in ready}  # orders are unique
                self._settling = [e for e in self._settling if e[1] not in taken]
            for _, order, rank, job, steps in sorted(ready, key=lambda e: e[1]):
                if job.cancelled.is_set():
                    steps.close()
                    self._finish(job, None)
                else:
                    self._steps.put((rank, order, job, steps))
            if stopping:
                return

    def _finish(self, job: Job, error: BaseException | None) -> None:
        with self._lock:
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
            self._metrics.queue_depth.set(len(self._jobs))
        outcome = "failed" if error is not None else "cancelled" if job.cancelled.is_set() else "completed"
        self._metrics.jobs.labels(outcome).inc()
        job.finish(error)

    def _release(self, sub: Subscription) -> None:
        with self._lock:
            if sub.viewport_id and self._viewports.get(sub.viewport_id) is sub:
                del self._viewports[sub.viewport_id]

    def stop_settling(self) -> None:
        """From now on no step waits: settling steps go to the workers at once (a stopping
        server finishes what it has admitted without waiting for views that will not come)."""
        with self._settle_cond:
            self._settler_stop = True
            self._settle_cond.notify()
        self._settler.join()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers; with wait, after every admitted step has run (a graceful stop)."""
        if not wait:
            with self._lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                job.cancelled.set()
        self.stop_settling()  # settling steps go back to the workers ahead of the stop markers
        for _ in self._threads:
            self._steps.put((math.inf, next(self._order), None, None))
        if wait:
            for thread in self._threads:
                thread.join()
