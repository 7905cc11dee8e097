"""Session viewport states become the render service's requests."""

from __future__ import annotations

import pytest
from collabkit import CT, PET, view
from voxcast.gateway.collab import InvalidCommand
from voxcast.gateway.collab.rendering import to_render_request

from voxcast.v1 import render_pb2


def test_mpr_with_fusion():
    state = view(
        40, fusion={"series_uid": PET, "opacity": 0.4, "window_width": 6}, slab_mm=5, slab_mode="mean"
    )
    req = to_render_request("s1", "ax", state)
    assert req.viewport_id == "s1/ax" and req.lossless
    assert req.WhichOneof("view") == "plane"
    assert (req.plane.center.z, req.plane.right.x, req.plane.pixel_mm) == (40, 1, 0.5)
    assert (req.series_uid, req.fusion_series_uid, req.fusion_opacity) == (CT, PET, pytest.approx(0.4))
    assert (req.window_center, req.window_width, req.slab_mode) == (40, 400, render_pb2.SLAB_MEAN)
    assert (req.width, req.height) == (512, 512)


def test_volume_rendering_uses_the_camera():
    camera = {"target": [0, 0, 0], "direction": [0, 1, 0], "up": [0, 0, 1], "fov_mm": 300}
    state = {"series_uid": CT, "mode": "vr", "camera": camera, "preset": "ct-bone", "shading": True}
    req = to_render_request("s1", "3d", state)
    assert req.mode == render_pb2.VR and req.WhichOneof("view") == "camera"
    assert (req.camera.direction.y, req.camera.fov_mm, req.shading) == (1, 300, True)


def test_a_bad_state_is_refused_by_field():
    with pytest.raises(InvalidCommand) as err:
        to_render_request("s1", "ax", {**view(), "width": 5})
    assert err.value.field == "state.width"
