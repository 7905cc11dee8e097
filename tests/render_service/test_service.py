"""The render service end to end: real catalog and render servers on free ports, the demo study."""

from __future__ import annotations

import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from voxcast.catalog.client import CatalogClient
from voxcast.render import engine, wire
from voxcast.render.encode import decode
from voxcast.render.ladder import FULL, PREVIEW
from voxcast.render.server import SERVICE_NAME, create_server

from voxcast.demo import write_demo_study
from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.testing import free_port
from voxcast.v1 import common_pb2, render_pb2

MODES = ["MPR", "MIP", "MINIP", "AVGIP", "VR"]
BACKEND = "numpy"  # as the render servers of conftest.py


def vec(v) -> common_pb2.Vec3:
    x, y, z = (float(c) for c in v)
    return common_pb2.Vec3(x=x, y=y, z=z)


def request_for(volume, series_uid: str, mode: str = "MPR", size=(96, 80), **kw) -> render_pb2.RenderRequest:
    """A view through the volume's centre: an axial plane, or a camera looking from the front."""
    req = render_pb2.RenderRequest(
        series_uid=series_uid, mode=render_pb2.Mode.Value(mode), width=size[0], height=size[1], **kw
    )
    if mode == "MPR":
        req.plane.CopyFrom(
            render_pb2.Plane(center=vec(volume.center), right=vec((1, 0, 0)), down=vec((0, 1, 0)))
        )
    else:
        req.camera.CopyFrom(
            render_pb2.Camera(target=vec(volume.center), direction=vec((0, 1, 0)), up=vec((0, 0, 1)))
        )
    return req


def slow_request(demo, **kw) -> render_pb2.RenderRequest:
    """A MIP big enough that its full rung takes a while on the numpy backend."""
    return request_for(demo.ct, demo.ct_series_uid, "MIP", size=(224, 224), lossless=True, **kw)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def local_ct(catalog, demo):
    """The CT as the catalog serves it, prepared here: the engine's own output is the oracle."""
    with CatalogClient(catalog.addr) as client:
        volume = client.fetch_volume(demo.ct_series_uid)
    return engine.prepare_volume(volume, BACKEND)


@pytest.mark.parametrize("mode", MODES)
def test_ladder_for_each_mode(start_render, demo, local_ct, mode):
    server, stub = start_render()
    req = request_for(demo.ct, demo.ct_series_uid, mode, lossless=True, viewport_id="left")
    frames = list(stub.Render(req, timeout=60))

    assert [f.rung for f in frames] == [render_pb2.PREVIEW, render_pb2.FULL, render_pb2.LOSSLESS]
    preview, full, lossless = frames
    assert [f.encoding for f in frames] == ["jpeg", "jpeg", "png"]
    assert (preview.width, preview.height) == (48, 40)
    assert all((f.width, f.height) == (96, 80) for f in (full, lossless))
    assert len(preview.data) < len(full.data)
    assert preview.sequence < full.sequence < lossless.sequence
    assert all(f.viewport_id == "left" for f in frames)
    assert preview.pixel_mm == pytest.approx(2 * full.pixel_mm)
    assert full.render_ms > 0 and full.encode_ms > 0
    # The window each picture was made with: CT's default (soft tissue); volume rendering has none.
    windows = {(f.window_center, f.window_width) for f in frames}
    assert windows == ({(0.0, 0.0)} if mode == "VR" else {(40.0, 400.0)})
    # Radiological: axial has anterior at the top, a frontal (coronal) view superior; the patient's
    # right is on the image left in both.
    labels = (full.labels.top, full.labels.bottom, full.labels.left, full.labels.right)
    assert labels == (("A", "P", "R", "L") if mode == "MPR" else ("S", "I", "R", "L"))
    assert decode(preview.data).shape == (40, 48, 3)

    expected = engine.render(local_ct, wire.view_request(req, local_ct, FULL)).rgb
    assert np.array_equal(decode(lossless.data), expected)
    assert np.abs(decode(full.data).astype(int) - expected).mean() < 8  # JPEG at quality 90
    # The preview is the engine's render of the ladder's preview view (coarser copy, size, step).
    preview_view = wire.view_request(req, local_ct, PREVIEW)
    expected_preview = engine.render(local_ct, preview_view, level=PREVIEW.level).rgb
    assert np.abs(decode(preview.data).astype(int) - expected_preview).mean() < 8  # quality 70
    name = render_pb2.Mode.Name(req.mode).lower()
    for rung in ("preview", "full", "lossless"):
        assert server.metrics.value("voxcast_render_frames_total", {"mode": name, "rung": rung}) == 1


@pytest.mark.parametrize(
    ("series", "kw", "window"),
    [
        ("ct", {"window_center": -600, "window_width": 1500}, (-600, 1500)),
        ("ct", {"preset": "bone"}, (400, 1800)),
        ("ct", {"preset": "auto"}, "auto"),
        ("pet", {}, (2.5, 5.0)),
    ],
)
def test_frames_say_which_window_made_them(start_render, demo, local_ct, series, kw, window):
    """The request's window, else its preset's, else the modality's default; auto resolved to the
    volume's percentiles: what a viewer shows as W/L and starts a window drag from."""
    _, stub = start_render()
    volume, uid = (demo.ct, demo.ct_series_uid) if series == "ct" else (demo.pet, demo.pet_series_uid)
    frames = list(stub.Render(request_for(volume, uid, "MIP", **kw), timeout=60))
    if window == "auto":
        window = local_ct.auto_window
    for f in frames:
        assert (f.window_center, f.window_width) == pytest.approx(window)


def test_without_lossless_the_ladder_ends_at_full(start_render, demo):
    _, stub = start_render()
    frames = list(stub.Render(request_for(demo.ct, demo.ct_series_uid), timeout=60))
    assert [f.rung for f in frames] == [render_pb2.PREVIEW, render_pb2.FULL]


def test_fusion_over_ct(start_render, demo, catalog):
    _, stub = start_render()
    req = request_for(
        demo.ct, demo.ct_series_uid, "MPR", fusion_series_uid=demo.pet_series_uid, fusion_opacity=0.6
    )
    assert [f.rung for f in stub.Render(req, timeout=60)] == [render_pb2.PREVIEW, render_pb2.FULL]


def test_fusion_in_another_frame_of_reference_is_refused(start_render, demo, catalog, tmp_path):
    other = write_demo_study(tmp_path / "other", size="small", seed=1)
    assert other.frame_of_reference_uid != demo.frame_of_reference_uid
    catalog.ingest(other.ct_paths)
    _, stub = start_render()
    req = request_for(demo.ct, demo.ct_series_uid, fusion_series_uid=other.ct_series_uid)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Render(req, timeout=60))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fusion_series_uid" in info.value.details() and "frame of reference" in info.value.details()


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (lambda r: setattr(r, "series_uid", "1.2.3.4.5"), grpc.StatusCode.NOT_FOUND, "series_uid"),
        (
            lambda r: setattr(r, "fusion_series_uid", "1.2.3.4.5"),
            grpc.StatusCode.NOT_FOUND,
            "fusion_series_uid",
        ),
        (lambda r: setattr(r, "width", 0), grpc.StatusCode.INVALID_ARGUMENT, "width"),
        (lambda r: setattr(r, "height", 50_000), grpc.StatusCode.INVALID_ARGUMENT, "height"),
        (lambda r: setattr(r.camera.up, "z", float("nan")), grpc.StatusCode.INVALID_ARGUMENT, "camera.up"),
        (lambda r: setattr(r, "mode", 0), grpc.StatusCode.INVALID_ARGUMENT, "mode"),
        (lambda r: setattr(r, "preset", "no-such-preset"), grpc.StatusCode.INVALID_ARGUMENT, "preset"),
    ],
)
def test_bad_requests(start_render, demo, change, code, field):
    _, stub = start_render()
    req = request_for(demo.ct, demo.ct_series_uid, "MIP")
    change(req)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Render(req, timeout=60))
    assert info.value.code() == code
    assert field in info.value.details()


def test_preload_reports_the_geometry(start_render, demo):
    server, stub = start_render()
    response = stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    assert list(response.geometry.shape) == list(demo.ct.shape)
    assert response.geometry.frame_of_reference_uid == demo.frame_of_reference_uid
    assert response.bytes == server.core.cache.nbytes > demo.ct.voxels.nbytes
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    assert server.metrics.value("voxcast_render_cache_misses_total") == 1
    assert server.metrics.value("voxcast_render_cache_hits_total") == 1
    with pytest.raises(grpc.RpcError) as info:
        stub.Preload(render_pb2.PreloadRequest(series_uid="9.9.9"), timeout=60)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_identical_views_are_rendered_once(start_render, demo):
    server, stub = start_render()
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    first = stub.Render(slow_request(demo, viewport_id="alice"), timeout=60)
    frames_a = [next(first)]  # the preview: the full rung is being rendered now
    frames_b = list(stub.Render(slow_request(demo, viewport_id="bob"), timeout=60))
    frames_a += list(first)

    assert [f.sequence for f in frames_a] == [f.sequence for f in frames_b]
    assert [f.data for f in frames_a] == [f.data for f in frames_b]
    assert {f.viewport_id for f in frames_a} == {"alice"} and {f.viewport_id for f in frames_b} == {"bob"}
    assert server.metrics.value("voxcast_render_coalesced_total") == 1
    assert server.metrics.value("voxcast_render_jobs_total", {"outcome": "completed"}) == 1
    assert server.metrics.value("voxcast_render_frames_total", {"mode": "mip", "rung": "full"}) == 1


def test_cancelled_stream_stops_rendering(start_render, demo):
    server, stub = start_render()
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    call = stub.Render(slow_request(demo), timeout=60)
    assert next(call).rung == render_pb2.PREVIEW
    call.cancel()
    wait_for(lambda: server.metrics.value("voxcast_render_jobs_total", {"outcome": "cancelled"}) == 1)
    for rung in ("full", "lossless"):
        assert server.metrics.value("voxcast_render_frames_total", {"mode": "mip", "rung": rung}) == 0
    assert server.core.hub.depth == 0


def test_newer_request_for_the_viewport_wins(start_render, demo):
    server, stub = start_render()
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    old = stub.Render(slow_request(demo, viewport_id="v1"), timeout=60)
    assert next(old).rung == render_pb2.PREVIEW
    newer = slow_request(demo, viewport_id="v1", preset="bone")
    new_frames = list(stub.Render(newer, timeout=60))
    assert list(old) == []  # the old stream ends without its remaining rungs
    assert [f.rung for f in new_frames] == [render_pb2.PREVIEW, render_pb2.FULL, render_pb2.LOSSLESS]
    assert server.metrics.value("voxcast_render_jobs_total", {"outcome": "cancelled"}) == 1
    assert server.metrics.value("voxcast_render_frames_total", {"mode": "mip", "rung": "full"}) == 1


def test_flood_beyond_the_queue_is_refused_then_served(start_render, demo):
    server, stub = start_render(render_queue=2, render_workers=1)
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    outcomes = []
    barrier = threading.Barrier(8)

    def client(k: int) -> None:
        req = slow_request(demo)
        req.camera.target.z += k  # distinct views: nothing to coalesce
        barrier.wait()
        try:
            outcomes.append(len(list(stub.Render(req, timeout=120))))
        except grpc.RpcError as exc:
            outcomes.append((exc.code(), exc.details()))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    refused = [o for o in outcomes if isinstance(o, tuple)]
    assert refused and all(code == grpc.StatusCode.RESOURCE_EXHAUSTED for code, _ in refused)
    assert all("VOXCAST_RENDER_QUEUE" in details for _, details in refused)
    assert 2 <= outcomes.count(3) == 8 - len(refused)
    assert server.metrics.value("voxcast_render_rejected_total") == len(refused)
    # Still answering afterwards.
    assert len(list(stub.Render(request_for(demo.ct, demo.ct_series_uid), timeout=60))) == 2


def test_catalog_down_then_back(start_render, start_catalog, demo):
    own = start_catalog()
    own.ingest(demo.ct_paths)
    _, stub = start_render(catalog_addr=own.addr)
    own.stop()
    req = request_for(demo.ct, demo.ct_series_uid)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Render(req, timeout=60))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert own.addr in info.value.details() and "catalog" in info.value.details()

    own.restart()
    deadline = time.monotonic() + 30
    while True:
        try:
            assert len(list(stub.Render(req, timeout=60))) == 2
            break
        except grpc.RpcError as exc:  # the channel reconnects within about a second
            assert exc.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline
            time.sleep(0.2)


def test_cache_eviction_keeps_bytes_under_the_bound(start_render, catalog, tmp_path):
    studies = [write_demo_study(tmp_path / f"s{seed}", size="small", seed=seed) for seed in (2, 3, 4, 5)]
    catalog.ingest([p for s in studies for p in s.ct_paths])
    # Room for two prepared small CTs, not three.
    per_volume = engine.prepare_volume(studies[0].ct, BACKEND).nbytes
    bound = int(2.5 * per_volume)
    server, stub = start_render(cache_bytes=bound)
    for _ in range(2):
        for study in studies:
            req = request_for(study.ct, study.ct_series_uid)
            assert len(list(stub.Render(req, timeout=60))) == 2
            assert server.core.cache.nbytes <= bound
            assert server.metrics.value("voxcast_render_cache_bytes") <= bound
    assert len(server.core.cache.keys()) == 2
    assert server.metrics.value("voxcast_render_cache_evictions_total") == 6
    assert server.metrics.value("voxcast_render_cache_misses_total") == 8


def test_create_server_health_metrics_and_graceful_stop(catalog, demo, render_settings):
    server, port = create_server(
        render_settings(), 0, catalog.addr, host="127.0.0.1", metrics_port=free_port()
    )
    server.start()
    assert server.warmed.wait(120)  # create_server warms the backend before reporting SERVING
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAME):
            status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        from voxcast.v1 import render_pb2_grpc

        stub = render_pb2_grpc.RenderServiceStub(channel)
        list(stub.Render(request_for(demo.ct, demo.ct_series_uid, "VR"), timeout=60))
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10)
            .read()
            .decode()
        )
        assert 'voxcast_render_frames_total{mode="vr",rung="preview"} 1.0' in text
        for name in ("render_seconds_bucket", "encode_seconds_bucket", "render_cache_bytes",
                     "render_cache_hit_ratio", "render_queue_depth", "render_warmup_seconds"):  # fmt: skip
            assert f"voxcast_{name}" in text

        # Graceful stop: a stream in flight gets all its frames, new calls are refused.
        call = stub.Render(slow_request(demo), timeout=60)
        assert next(call).rung == render_pb2.PREVIEW
        done = server.stop(grace=30)
        assert [f.rung for f in call] == [render_pb2.FULL, render_pb2.LOSSLESS]
        assert done.wait(30)
        with pytest.raises(grpc.RpcError):
            list(stub.Render(request_for(demo.ct, demo.ct_series_uid), timeout=5))


def test_previews_are_rendered_before_other_views_full_frames(start_render, demo):
    server, stub = start_render(render_workers=1)
    stub.Preload(render_pb2.PreloadRequest(series_uid=demo.ct_series_uid), timeout=60)
    first = stub.Render(slow_request(demo), timeout=60)
    frames = {"a": [next(first)]}  # a's full frame is being rendered on the only worker now

    def follow(name: str, offset: float) -> None:
        req = slow_request(demo)
        req.camera.target.x += offset
        frames[name] = list(stub.Render(req, timeout=60))

    threads = [threading.Thread(target=follow, args=(name, k + 1.0)) for k, name in enumerate("bc")]
    for t in threads:
        t.start()
    frames["a"] += list(first)
    for t in threads:
        t.join(60)
    seq = {name: [f.sequence for f in fs] for name, fs in frames.items()}
    # Both newer views show their preview before the older view's lossless frame and before
    # either newer view's full frame.
    assert max(seq["b"][0], seq["c"][0]) < seq["a"][2]
    assert max(seq["b"][0], seq["c"][0]) < min(seq["b"][1], seq["c"][1])
