"""In-flight render jobs: coalescing, cancellation and bounded admission.

One Job renders one distinct view state; every caller asking for that state while it is in
flight subscribes to it and receives all its frames (identical requests are rendered once).
A Job is cancelled when its last subscriber leaves: the caller cancelled, or a newer request
arrived for the same viewport (latest wins). The worker checks `job.cancelled` between rungs.
At most `queue_limit` jobs are admitted (waiting for a worker or running); beyond that a new
view is refused with QueueFull rather than piled up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from .errors import QueueFull
from .metrics import RenderMetrics


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


class JobHub:
    def __init__(
        self,
        work: Callable[[Job], None],
        workers: int,
        queue_limit: int,
        metrics: RenderMetrics,
    ) -> None:
        self._work = work
        self.queue_limit = queue_limit
        self._metrics = metrics
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self._lock = threading.Lock()
        self._jobs: dict[bytes, Job] = {}
        self._viewports: dict[str, Subscription] = {}

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
            self._pool.submit(self._run, job)
        return sub

    def _run(self, job: Job) -> None:
        error = None
        try:
            self._work(job)
        except BaseException as exc:  # every subscriber is told, the worker thread survives
            error = exc
        finally:
            with self._lock:
                if self._jobs.get(job.key) is job:
                    del self._jobs[job.key]
                self._metrics.queue_depth.set(len(self._jobs))
            outcome = (
                "failed" if error is not None else "cancelled" if job.cancelled.is_set() else "completed"
            )
            self._metrics.jobs.labels(outcome).inc()
            job.finish(error)

    def _release(self, sub: Subscription) -> None:
        with self._lock:
            if sub.viewport_id and self._viewports.get(sub.viewport_id) is sub:
                del self._viewports[sub.viewport_id]

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
