"""Prometheus metrics of one render service instance.

Each server owns its registry (several servers can live in one process, as in the tests); the
HTTP exporter serves that registry on VOXCAST_METRICS_PORT.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Frames take from about a millisecond (a JPEG preview) to seconds (a shaded CPU volume rendering).
TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RenderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.frames = Counter(
            "voxcast_render_frames", "Frames rendered and encoded", ["mode", "rung"], registry=r
        )
        self.jobs = Counter(
            "voxcast_render_jobs",
            "Render jobs (one per distinct in-flight view) by outcome",
            ["outcome"],
            registry=r,
        )
        self.coalesced = Counter(
            "voxcast_render_coalesced", "Requests served by an identical in-flight render", registry=r
        )
        self.rejected = Counter(
            "voxcast_render_rejected", "Requests refused because the render queue was full", registry=r
        )
        self.render_seconds = Histogram(
            "voxcast_render_seconds",
            "Engine time per frame",
            ["mode", "rung"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.encode_seconds = Histogram(
            "voxcast_encode_seconds",
            "Encoding time per frame",
            ["encoding"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "voxcast_render_queue_depth", "Render jobs admitted (waiting or running)", registry=r
        )
        self.cache_bytes = Gauge(
            "voxcast_render_cache_bytes", "Bytes of volumes held by the cache", registry=r
        )
        self.cache_limit = Gauge("voxcast_render_cache_limit_bytes", "Bound of the volume cache", registry=r)
        self.cache_volumes = Gauge("voxcast_render_cache_volumes", "Volumes held by the cache", registry=r)
        self.cache_hits = Counter("voxcast_render_cache_hits", "Volume cache hits", registry=r)
        self.cache_misses = Counter("voxcast_render_cache_misses", "Volume cache misses (loads)", registry=r)
        self.cache_evictions = Counter("voxcast_render_cache_evictions", "Volumes evicted", registry=r)
        self.cache_hit_ratio = Gauge(
            "voxcast_render_cache_hit_ratio", "Hits / (hits + misses) since start", registry=r
        )
        self.cache_hit_ratio.set_function(self._hit_ratio)
        self.warmup_seconds = Gauge(
            "voxcast_render_warmup_seconds",
            "How long the backend's start-up warm-up took (0 until it has run)",
            registry=r,
        )
        self.gpu_memory = Gauge(
            "voxcast_render_gpu_memory_bytes", "GPU memory used by the render backend's pool", registry=r
        )

    def _hit_ratio(self) -> float:
        hits = self.cache_hits._value.get()
        total = hits + self.cache_misses._value.get()
        return hits / total if total else 0.0

    def watch_gpu_memory(self, used_bytes) -> None:
        """Report `used_bytes()` (read at scrape time) as the GPU memory gauge."""
        self.gpu_memory.set_function(lambda: float(used_bytes()))

    def value(self, name: str, labels: dict | None = None) -> float:
        """Current value of a sample (0 when it has not been observed yet)."""
        v = self.registry.get_sample_value(name, labels or {})
        return 0.0 if v is None else v

    def serve_http(self, port: int, addr: str = "0.0.0.0"):
        """Start the /metrics exporter; returns (http server, thread) so it can be shut down."""
        return start_http_server(port, addr=addr, registry=self.registry)
