"""RenderRequest checks (INVALID_ARGUMENT naming the field), coalescing keys, the ladder's views,
and the client-side conversion of engine requests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from voxcast.render import engine, wire
from voxcast.render.encode import decode, encode_jpeg, encode_png
from voxcast.render.engine.raygrid import default_step_mm
from voxcast.render.errors import InvalidArgument
from voxcast.render.ladder import FULL, PREVIEW, PREVIEW_RAY_STEP, ladder

from voxcast.v1 import common_pb2, render_pb2
from voxcast.volume import Volume


def vec(x, y, z):
    return common_pb2.Vec3(x=x, y=y, z=z)


def mpr_request(**kw) -> render_pb2.RenderRequest:
    req = render_pb2.RenderRequest(series_uid="1.2.3", mode=render_pb2.MPR, width=64, height=48, **kw)
    req.plane.CopyFrom(render_pb2.Plane(center=vec(0, 0, 0), right=vec(1, 0, 0), down=vec(0, 1, 0)))
    return req


def camera_request(**kw) -> render_pb2.RenderRequest:
    kw.setdefault("mode", render_pb2.VR)
    req = render_pb2.RenderRequest(series_uid="1.2.3", width=64, height=48, **kw)
    req.camera.CopyFrom(render_pb2.Camera(target=vec(0, 0, 0), direction=vec(0, 1, 0), up=vec(0, 0, 1)))
    return req


def volume() -> Volume:
    return Volume.from_geometry(np.zeros((10, 20, 30), np.int16), (-15, -10, -25), (5.0, 1.0, 1.0), np.eye(3))


def prepared() -> engine.PreparedVolume:
    return engine.prepare_volume(volume(), "numpy")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: setattr(r, "series_uid", ""), "series_uid"),
        (lambda r: setattr(r, "mode", 0), "mode"),
        (lambda r: setattr(r, "mode", 42), "mode"),
        (lambda r: setattr(r, "width", 0), "width"),
        (lambda r: setattr(r, "height", 100_000), "height"),
        (lambda r: setattr(r.plane.center, "x", math.nan), "plane.center"),
        (lambda r: setattr(r.plane, "pixel_mm", -1), "plane.pixel_mm"),
        (lambda r: r.ClearField("plane"), "view"),
        (lambda r: setattr(r, "window_width", math.inf), "window"),
        (lambda r: setattr(r, "slab_mode", 17), "slab_mode"),
    ],
)
def test_bad_requests_name_the_field(change, field):
    req = mpr_request()
    change(req)
    with pytest.raises(InvalidArgument) as info:
        wire.check(req)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_nan_in_a_camera_is_refused():
    req = camera_request()
    req.camera.direction.y = math.nan
    with pytest.raises(InvalidArgument, match="camera.direction"):
        wire.check(req)


def test_engine_checks_name_their_field():
    with pytest.raises(ValueError, match="preset"):
        wire.check(mpr_request(preset="no-such-preset"))
    with pytest.raises(ValueError, match="fusion_opacity"):
        wire.check(mpr_request(fusion_opacity=2.0))


def test_coalescing_key_ignores_only_the_viewport():
    a, b = mpr_request(viewport_id="left"), mpr_request(viewport_id="right")
    assert wire.coalescing_key(a) == wire.coalescing_key(b)
    assert wire.coalescing_key(a) != wire.coalescing_key(mpr_request(preset="lung"))
    assert wire.coalescing_key(a) != wire.coalescing_key(mpr_request(lossless=True))


def test_fit_and_preview_views():
    vol = prepared()
    full = wire.view_request(mpr_request(), vol, FULL)
    assert full.plane.pixel_mm == pytest.approx(engine.fit_pixel(vol.volume, (1, 0, 0), (0, 1, 0), 64, 48))
    preview = wire.view_request(mpr_request(), vol, PREVIEW)
    assert (preview.width, preview.height) == (32, 24)
    # Same field of view at half the pixels.
    assert preview.plane.pixel_mm == pytest.approx(2 * full.plane.pixel_mm)
    cam = wire.view_request(camera_request(), vol, PREVIEW)
    assert cam.camera.fov_mm == wire.view_request(camera_request(), vol, FULL).camera.fov_mm
    assert [s.name for s in ladder(False)] == ["preview", "full"]
    assert [s.name for s in ladder(True)] == ["preview", "full", "lossless"]


@pytest.mark.parametrize("mode", ["VR", "MIP", "MINIP", "AVGIP"])
def test_whole_volume_previews_take_coarser_ray_steps(mode):
    vol = prepared()
    req = camera_request(mode=render_pb2.Mode.Value(mode))
    name = mode.lower()
    preview = wire.view_request(req, vol, PREVIEW)
    level_default = default_step_mm(vol.levels[PREVIEW.level], preview.view.normal, name)
    assert preview.step_mm == pytest.approx(PREVIEW_RAY_STEP * level_default)
    # Four times fewer samples per ray than the full render's default (the level's voxels are
    # twice as large, and the preview steps over two of them).
    assert preview.step_mm == pytest.approx(4 * default_step_mm(vol.volume, preview.view.normal, name))
    # The full render keeps the engine's default (0) or the requested step, unchanged.
    assert wire.view_request(req, vol, FULL).step_mm == 0
    req.step_mm = 0.25
    assert wire.view_request(req, vol, FULL).step_mm == 0.25
    # A fine requested step is coarsened like the default; a coarse one scales with the pixels.
    assert wire.view_request(req, vol, PREVIEW).step_mm == pytest.approx(PREVIEW_RAY_STEP * level_default)
    req.step_mm = 5.0
    assert wire.view_request(req, vol, PREVIEW).step_mm == 10.0


@pytest.mark.parametrize(
    "req",
    [
        mpr_request(),
        mpr_request(slab_mm=20.0),
        camera_request(mode=render_pb2.MIP, slab_mm=20.0),
        camera_request(slab_mm=20.0),
    ],
    ids=["mpr", "mpr-slab", "mip-slab", "vr-slab"],
)
def test_slab_and_plane_previews_keep_the_levels_step(req):
    # The default stays the engine's default on the coarse copy (one coarse voxel); a requested
    # step scales with the pixel size.
    assert wire.view_request(req, prepared(), PREVIEW).step_mm == 0
    req.step_mm = 0.5
    assert wire.view_request(req, prepared(), PREVIEW).step_mm == 1.0


def test_engine_request_round_trips_through_the_proto():
    vol = prepared()
    view = engine.ViewRequest(
        "mip",
        camera=engine.Camera((1, 2, 3), (0, 1, 0), (0, 0, 1), 80.0, 40, 30),
        preset="bone",
        window=(100, 500),
        slab_mm=12.0,
        invert=True,
        colormap="hot-iron",
    )
    back = wire.view_request(wire.to_proto(view, "1.2.3"), vol)
    assert back.mode == view.mode and back.preset == view.preset and back.window == view.window
    assert back.slab_mm == view.slab_mm and back.invert and back.colormap == view.colormap
    np.testing.assert_allclose(back.camera.target, view.camera.target)
    assert back.camera.fov_mm == view.camera.fov_mm and back.width == 40 and back.height == 30


def test_png_is_exact_and_jpeg_is_close():
    rng = np.random.default_rng(1)
    rgb = np.repeat(rng.integers(0, 256, (48, 64, 1), dtype=np.uint8), 3, axis=2)
    png = encode_png(rgb)
    assert png.encoding == "png" and np.array_equal(decode(png.data), rgb)
    smooth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 48, axis=0).repeat(3, axis=2)
    jpeg = encode_jpeg(smooth, 90)
    assert jpeg.encoding == "jpeg"
    assert np.abs(decode(jpeg.data).astype(int) - smooth).max() <= 8
    with pytest.raises(ValueError, match="RGB uint8"):
        encode_png(rgb[..., 0])
