"""Start-up warm-up: health NOT_SERVING while the backend warms, SERVING after; requests are served
meanwhile; the warm-up compiles every numba kernel a real view needs."""

from __future__ import annotations

import logging
import threading

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from voxcast.render import engine
from voxcast.render.server import SERVICE_NAME
from voxcast.render.warmup import DTYPES, VIEWS, warm_up

from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import render_pb2

from .test_service import request_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=CHANNEL_OPTIONS)
    return channel, health_pb2_grpc.HealthStub(channel)


def _status(health, name: str = ""):
    return health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status


def test_health_is_not_serving_until_warmed_up(start_render, demo, caplog):
    caplog.set_level(logging.INFO, logger="voxcast.render")
    release = threading.Event()

    def held_warm_up(core) -> None:
        assert release.wait(60)
        core.warm_up()

    server, stub = start_render(warm_up=held_warm_up)
    channel, health = _health(server)
    with channel:
        assert _status(health) == _status(health, SERVICE_NAME) == NOT_SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=60)
        assert next(watch).status == NOT_SERVING
        # A request during warm-up is served all the same.
        frames = list(stub.Render(request_for(demo.ct, demo.ct_series_uid), timeout=60))
        assert [f.rung for f in frames] == [render_pb2.PREVIEW, render_pb2.FULL]
        assert not server.warmed.is_set()

        release.set()
        assert next(watch).status == SERVING
        watch.cancel()
        assert server.warmed.wait(10)
        assert _status(health) == _status(health, SERVICE_NAME) == SERVING
    assert server.metrics.value("voxcast_render_warmup_seconds") > 0
    assert "render backend warmed up in" in caplog.text


def test_a_failed_warm_up_is_logged_and_the_server_serves(start_render, demo, caplog):
    def broken(core) -> None:
        raise RuntimeError("kernel failed to compile")

    server, stub = start_render(warm_up=broken)
    assert server.warmed.wait(30)
    channel, health = _health(server)
    with channel:
        assert _status(health) == SERVING
    assert "warm-up failed" in caplog.text and "kernel failed to compile" in caplog.text
    assert len(list(stub.Render(request_for(demo.ct, demo.ct_series_uid), timeout=60))) == 2


def test_warm_up_renders_every_view_from_each_voxel_type():
    report = warm_up(engine.get_backend("numpy"))
    assert sorted(report.rendered) == sorted(
        (view.name, np.dtype(dtype).name) for view in VIEWS for dtype in DTYPES
    )
    assert report.seconds > 0


def _numba_signatures() -> int:
    from numba.core.registry import CPUDispatcher
    from voxcast.render.engine.backends import numba_backend

    return sum(len(v.signatures) for v in vars(numba_backend).values() if isinstance(v, CPUDispatcher))


@pytest.mark.slow
def test_after_warm_up_real_views_compile_nothing_new(demo):
    """Every kernel a real view needs (any mode, either voxel type, preview level) is compiled by
    the warm-up. Slow only when the numba cache is cold (it compiles then)."""
    backend = engine.get_backend("numba")
    warm_up(backend)
    compiled = _numba_signatures()
    for volume in (demo.ct, demo.pet):
        prepared = engine.prepare_volume(volume, backend)
        plane = engine.oblique((0.2, 1.0, 0.1), volume, size=(32, 32))
        requests = [
            engine.ViewRequest("mpr", plane=plane),
            engine.ViewRequest("mpr", plane=plane, slab_mm=8.0, slab_mode="mean"),
            *(engine.ViewRequest(mode, camera=engine.Camera.from_plane(plane)) for mode in engine.MODES),
            engine.ViewRequest("vr", camera=engine.Camera.from_plane(plane), shading=True),
        ]
        for request in requests:
            for level in (0, 1):
                engine.render(prepared, request, level=level)
    assert _numba_signatures() == compiled
