"""Settling: after its preview, a viewport's view waits briefly for a newer view of that viewport
before rendering its full frame, so a drag renders full frames only for where it stops."""

from __future__ import annotations

import pytest
from voxcast.render.jobs import JobHub
from voxcast.render.metrics import RenderMetrics

from voxcast.v1 import render_pb2

from .test_service import request_for, wait_for

# Long enough that every step of these tests happens well within it on a loaded machine: the
# tests check which frames are rendered, never how fast.
LONG_SETTLE_S = 60.0


def _frames(server, rung: str, mode: str = "mpr") -> float:
    return server.metrics.value("voxcast_render_frames_total", {"mode": mode, "rung": rung})


def _jobs(server, outcome: str) -> float:
    return server.metrics.value("voxcast_render_jobs_total", {"outcome": outcome})


def test_a_drag_renders_the_full_frame_only_where_it_stops(start_render, demo):
    server, stub = start_render(settle_s=2.0)
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    calls = []
    for k in range(5):  # each view follows the previous one's preview, as a drag does
        req = request_for(demo.ct, demo.ct_series_uid, viewport_id="drag", lossless=True)
        req.plane.center.z += k
        calls.append(stub.Render(req, timeout=60))
        assert next(calls[-1]).rung == render_pb2.PREVIEW
    *superseded, last = calls
    assert [f.rung for f in last] == [render_pb2.FULL, render_pb2.LOSSLESS]
    assert all(list(call) == [] for call in superseded)  # ended without their full rungs
    assert _frames(server, "preview") == 5
    assert _frames(server, "full") == _frames(server, "lossless") == 1
    assert _jobs(server, "cancelled") == 4 and _jobs(server, "completed") == 1
    assert server.core.hub.depth == 0


def test_a_single_view_gets_its_whole_ladder(start_render, demo):
    server, stub = start_render()  # the service's own settle interval
    req = request_for(demo.ct, demo.ct_series_uid, viewport_id="still", lossless=True)
    frames = list(stub.Render(req, timeout=60))
    assert [f.rung for f in frames] == [render_pb2.PREVIEW, render_pb2.FULL, render_pb2.LOSSLESS]
    assert _frames(server, "full") == 1 and _jobs(server, "completed") == 1


def test_a_request_without_viewport_does_not_wait(start_render, demo):
    server, stub = start_render(settle_s=LONG_SETTLE_S)
    # Would wait a minute if it settled: the call's deadline is shorter.
    frames = list(stub.Render(request_for(demo.ct, demo.ct_series_uid, lossless=True), timeout=30))
    assert [f.rung for f in frames] == [render_pb2.PREVIEW, render_pb2.FULL, render_pb2.LOSSLESS]


def test_a_cancelled_settling_view_is_dropped_at_once(start_render, demo):
    server, stub = start_render(settle_s=LONG_SETTLE_S)
    call = stub.Render(request_for(demo.ct, demo.ct_series_uid, viewport_id="v"), timeout=120)
    assert next(call).rung == render_pb2.PREVIEW
    call.cancel()
    # Well before its settle interval ends, the job is gone and its queue slot free.
    wait_for(lambda: _jobs(server, "cancelled") == 1, timeout=LONG_SETTLE_S / 2)
    assert server.core.hub.depth == 0 and _frames(server, "full") == 0


def test_a_graceful_stop_renders_settling_views_at_once(start_render, demo):
    server, stub = start_render(settle_s=LONG_SETTLE_S)
    call = stub.Render(request_for(demo.ct, demo.ct_series_uid, viewport_id="v"), timeout=LONG_SETTLE_S / 2)
    assert next(call).rung == render_pb2.PREVIEW
    done = server.stop(grace=LONG_SETTLE_S / 2)
    assert [f.rung for f in call] == [render_pb2.FULL]
    assert done.wait(LONG_SETTLE_S / 2)


@pytest.mark.parametrize("settle_s", [-0.1, float("nan"), float("inf")])
def test_a_bad_settle_interval_is_refused(settle_s):
    with pytest.raises(ValueError, match="settle_s"):
        JobHub(lambda job: iter(()), 1, 1, RenderMetrics(), settle_s)
