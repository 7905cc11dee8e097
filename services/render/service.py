"""The render core behind the gRPC servicer: volume cache, job hub and the ladder loop.

`render(request)` checks the request, then subscribes the caller to the job for that view
state (an identical job in flight is shared). Render workers run the job one ladder step at a
time, previews first (see jobs.JobHub): the first step loads the volumes through the cache and
renders the preview; each step checks whether anybody still wants the frames.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from voxcast.config import Settings
from voxcast.grpcio import geometry_to_proto
from voxcast.v1 import render_pb2

from . import encode, engine, wire
from .cache import VolumeCache
from .catalog_source import CatalogSource
from .errors import InvalidArgument, NotFound
from .jobs import SETTLE_S, Job, JobHub, Subscription
from .ladder import ladder
from .metrics import RenderMetrics
from .warmup import warm_up

log = logging.getLogger(__name__)


@dataclass(eq=False)
class CachedVolume:
    prepared: engine.PreparedVolume

    @property
    def nbytes(self) -> int:
        return self.prepared.nbytes

    @property
    def volume(self):
        return self.prepared.volume


class RenderCore:
    def __init__(
        self,
        source: CatalogSource,
        backend,
        *,
        cache_bytes: int,
        workers: int,
        queue_limit: int,
        metrics: RenderMetrics | None = None,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.source = source
        self.backend = backend
        self.metrics = metrics or RenderMetrics()
        self.cache = VolumeCache(
            cache_bytes, self._load, self.metrics, after_evict=self._release_device_memory
        )
        self.hub = JobHub(self._run, workers, queue_limit, self.metrics, settle_s)
        self._load_slots = threading.BoundedSemaphore(workers)
        self._sequence = itertools.count(1)
        self._sequence_lock = threading.Lock()
        if backend.name == "cupy":
            import cupy

            self.metrics.watch_gpu_memory(lambda: cupy.get_default_memory_pool().used_bytes())

    @classmethod
    def from_settings(cls, settings: Settings, catalog_addr: str | None = None) -> RenderCore:
        return cls(
            CatalogSource(catalog_addr or settings.catalog_addr),
            engine.get_backend(settings.backend),
            cache_bytes=settings.render_cache_mb * 2**20,
            workers=settings.render_workers,
            queue_limit=settings.render_queue,
        )

    @property
    def catalog_addr(self) -> str:
        return self.source.addr

    # -- volumes ---------------------------------------------------------------------------

    def _load(self, series_uid: str) -> CachedVolume:
        # A volume being loaded is not yet counted by the cache: bound how many are, so that a burst
        # of Preload calls for different series cannot hold many volumes in memory at once.
        with self._load_slots:
            volume = self.source.fetch_volume(series_uid)
            return CachedVolume(engine.prepare_volume(volume, self.backend))

    def _release_device_memory(self) -> None:
        if self.backend.name == "cupy":
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()

    def volume(self, series_uid: str, field: str = "series_uid") -> CachedVolume:
        if not series_uid.strip():
            raise InvalidArgument(field, "required")
        try:
            return self.cache.get(series_uid)
        except NotFound as exc:
            raise NotFound(f"{field}: {exc}") from None

    def preload(self, series_uid: str) -> render_pb2.PreloadResponse:
        cached = self.volume(series_uid)
        return render_pb2.PreloadResponse(geometry=geometry_to_proto(cached.volume), bytes=cached.nbytes)

    # -- rendering -------------------------------------------------------------------------

    def render(self, request: render_pb2.RenderRequest) -> Subscription:
        """Subscribe to the frames of `request` (raises InvalidArgument / QueueFull at once)."""
        wire.check(request)
        return self.hub.subscribe(wire.coalescing_key(request), request, request.viewport_id)

    def _next_sequence(self) -> int:
        with self._sequence_lock:
            return next(self._sequence)

    def _run(self, job: Job) -> Iterator[None]:
        """The ladder of one job, yielding after each published frame (the hub schedules steps)."""
        request = job.request
        if job.cancelled.is_set():
            return
        primary = self.volume(request.series_uid)
        fusion = None
        if request.fusion_series_uid:
            fusion = self.volume(request.fusion_series_uid, "fusion_series_uid")
            a, b = primary.volume.frame_of_reference_uid, fusion.volume.frame_of_reference_uid
            if a != b:
                raise InvalidArgument(
                    "fusion_series_uid",
                    f"series {request.fusion_series_uid} is in frame of reference {b or '(none)'}, "
                    f"not {a or '(none)'} like series {request.series_uid}",
                )
        mode = wire.mode_name(request)
        image, render_ms = None, 0.0
        for step in ladder(request.lossless):
            if job.cancelled.is_set():
                return
            if not step.reuse_previous:
                view = wire.view_request(request, primary.prepared, step)
                started = time.perf_counter()
                image = engine.render(
                    primary.prepared, view, fusion=fusion.prepared if fusion else None, level=step.level
                )
                render_s = time.perf_counter() - started
                render_ms = render_s * 1e3
                self.metrics.render_seconds.labels(mode, step.name).observe(render_s)
                if job.cancelled.is_set():
                    return
            started = time.perf_counter()
            if step.encoding == "png":
                encoded = encode.encode_png(image.rgb)
            else:
                encoded = encode.encode_jpeg(image.rgb, step.quality)
            encode_s = time.perf_counter() - started
            self.metrics.encode_seconds.labels(encoded.encoding).observe(encode_s)
            job.publish(wire.frame(step, encoded, image, render_ms, encode_s * 1e3, self._next_sequence()))
            self.metrics.frames.labels(mode, step.name).inc()
            yield

    def warm_up(self) -> None:
        """Compile (or load) the backend's kernels by rendering every mode once; logs how long."""
        log.info("warming up the %s render backend", self.backend.name)
        report = warm_up(self.backend)
        self.metrics.warmup_seconds.set(report.seconds)
        log.info(
            "%s render backend warmed up in %.1f s (%d views)",
            self.backend.name,
            report.seconds,
            len(report.rendered),
        )

    def close(self) -> None:
        self.hub.shutdown(wait=True)
        self.cache.clear()
        self.source.close()
