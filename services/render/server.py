"""The render service's gRPC server: RenderService, the standard health service and the
Prometheus exporter. Building the server (`create_server`) is separate from running it (`serve`).

A started server warms its render backend in the background (see warmup.py) and reports the
standard health status NOT_SERVING until that is done, SERVING after: a readiness probe keeps
viewers away from a fresh pod while its kernels compile. Requests that arrive meanwhile are served;
they wait on the compilation like the warm-up does.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from voxcast.config import Settings
from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import render_pb2, render_pb2_grpc

from . import wire
from .errors import status_for
from .service import RenderCore

log = logging.getLogger(__name__)

SERVICE_NAME = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name
# Streams beyond the render queue: coalesced viewers and Preload calls need slots too, and a
# Render stream holds its thread while frames are produced.
RPCS_PER_QUEUE_SLOT = 4
EXTRA_RPCS = 16


def _abort(context: grpc.ServicerContext, exc: Exception):
    code, message = status_for(exc)
    context.abort(code, message)


class RenderServicer(render_pb2_grpc.RenderServiceServicer):
    def __init__(self, core: RenderCore) -> None:
        self.core = core

    def Render(self, request, context):
        try:
            subscription = self.core.render(request)
        except Exception as exc:
            _abort(context, exc)
        # Fires when the caller cancels or the deadline passes (and harmlessly on completion).
        if not context.add_callback(subscription.close):
            subscription.close()  # the call has already ended
            return
        try:
            for frame in subscription:
                yield wire.for_viewport(frame, request.viewport_id)
        except Exception as exc:
            _abort(context, exc)

    def Preload(self, request, context):
        try:
            return self.core.preload(request.series_uid)
        except Exception as exc:
            _abort(context, exc)


class RenderServer:
    """A started-or-not render server: the gRPC server, its render core and metrics exporter."""

    def __init__(
        self,
        settings: Settings,
        core: RenderCore,
        port: int,
        host: str,
        metrics_port: int,
        *,
        warm_up: Callable[[], object] | None = None,
    ) -> None:
        """`warm_up` runs in a background thread once started; health says NOT_SERVING until it
        returns (None: SERVING at once)."""
        self.core = core
        self._warm_up = warm_up
        self.warmed = threading.Event()  # set once the server reports SERVING
        self.metrics = core.metrics
        self.metrics_port = metrics_port
        self._metrics_http = None
        rpcs = settings.render_queue * RPCS_PER_QUEUE_SLOT + EXTRA_RPCS
        self._grpc = grpc.server(
            ThreadPoolExecutor(max_workers=rpcs, thread_name_prefix="render-rpc"),
            options=CHANNEL_OPTIONS,
            maximum_concurrent_rpcs=rpcs,
        )
        render_pb2_grpc.add_RenderServiceServicer_to_server(RenderServicer(core), self._grpc)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        self.port = self._grpc.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise RuntimeError(f"cannot bind the render service to {host}:{port}")

    def start(self) -> None:
        if self.metrics_port:
            self._metrics_http, _ = self.metrics.serve_http(self.metrics_port)
        self._grpc.start()
        if self._warm_up is None:
            self._serving()
            return
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        threading.Thread(target=self._warm, name="render-warm-up", daemon=True).start()

    def _warm(self) -> None:
        try:
            self._warm_up()
        except Exception:
            # Requests still work (each compiles what it needs); keeping the pod unready for ever
            # would hide the service rather than the fault, which is logged here.
            log.exception("render backend warm-up failed; serving without it")
        self._serving()

    def _serving(self) -> None:
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self.warmed.set()

    def _set_health(self, status) -> None:
        # After enter_graceful_shutdown the health servicer ignores this: a stopping server stays
        # NOT_SERVING even if its warm-up ends late.
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def stop(self, grace: float | None = 5.0) -> threading.Event:
        """Refuse new calls, let in-flight frames finish (up to `grace` seconds), then stop the
        workers, drop the cache and the metrics exporter. The event is set once all is done."""
        self.health.enter_graceful_shutdown()
        self.core.hub.stop_settling()  # in-flight streams get their full frames now
        rpcs_done = self._grpc.stop(grace)
        stopped = threading.Event()

        def _finish() -> None:
            rpcs_done.wait()
            self.core.close()
            if self._metrics_http is not None:
                self._metrics_http.shutdown()
                self._metrics_http.server_close()
                self._metrics_http = None
            stopped.set()

        threading.Thread(target=_finish, name="render-stop", daemon=True).start()
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._grpc.wait_for_termination(timeout)


def create_server(
    settings: Settings,
    port: int = 0,
    catalog_addr: str | None = None,
    *,
    host: str = "[::]",
    metrics_port: int | None = None,
    warm_up: bool = True,
) -> tuple[RenderServer, int]:
    """Build (not start) a render server; port 0 picks a free port. Returns (server, port).
    With warm_up, the started server warms its backend before it reports SERVING."""
    core = RenderCore.from_settings(settings, catalog_addr=catalog_addr or settings.catalog_addr)
    server = RenderServer(
        settings,
        core,
        port,
        host,
        settings.metrics_port if metrics_port is None else metrics_port,
        warm_up=core.warm_up if warm_up else None,
    )
    return server, server.port


def serve(settings: Settings, port: int | None = None, catalog_addr: str | None = None, grace: float = 10.0):
    """Run the render service until SIGTERM/SIGINT, then stop gracefully."""
    server, bound = create_server(
        settings, settings.render_port if port is None else port, catalog_addr or settings.catalog_addr
    )
    server.start()
    log.info(
        "render service on port %d (backend %s, catalog %s, cache %d MiB, queue %d, workers %d, metrics %s)",
        bound,
        server.core.backend.name,
        server.core.catalog_addr,
        settings.render_cache_mb,
        settings.render_queue,
        settings.render_workers,
        f"port {server.metrics_port}" if server.metrics_port else "off",
    )
    stopping = threading.Event()

    def _on_signal(signum, _frame) -> None:
        log.info("signal %d: stopping (grace %.0f s)", signum, grace)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)
    while not stopping.wait(1.0):
        pass
    server.stop(grace).wait()
    return 0
