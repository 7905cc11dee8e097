"""ViewRequest validation: every bad field is refused with a ValueError naming it."""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.render.engine import Camera, Plane, ViewRequest

PLANE = Plane((0, 0, 0), (1, 0, 0), (0, 1, 0), 1.0, 16, 8)


def test_a_good_request_is_normalised():
    request = ViewRequest("MIP", plane=PLANE, preset="Soft_Tissue", window=[40, 400], colormap="Hot Iron")
    assert request.mode == "mip" and request.preset == "soft-tissue" and request.colormap == "hot-iron"
    assert request.window == (40.0, 400.0) and request.window.lo == -160
    assert (request.width, request.height) == (16, 8) and request.reducer == "max"
    assert ViewRequest("mpr", plane=PLANE, slab_mm=10, slab_mode="minip").reducer == "min"
    camera = Camera((0, 0, 0), (0, 0, 1), (0, -1, 0), 8.0, 16, 8)
    np.testing.assert_allclose(ViewRequest("vr", camera=camera).view.right, (1, 0, 0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "xray"}, "mode"),
        ({"plane": None}, "view"),
        ({"camera": Camera((0, 0, 0), (0, 0, 1), (0, -1, 0), 8.0, 16, 8)}, "view"),
        ({"plane": "axial"}, "plane"),
        ({"preset": "ct-bone"}, "preset"),
        ({"mode": "vr", "preset": "lung"}, "preset"),
        ({"window": (40, 0)}, "window"),
        ({"window": (np.nan, 10)}, "window"),
        ({"window": 40}, "window"),
        ({"colormap": "viridis"}, "colormap"),
        ({"slab_mm": -1}, "slab_mm"),
        ({"slab_mm": np.inf}, "slab_mm"),
        ({"slab_mode": "sum"}, "slab_mode"),
        ({"step_mm": "fast"}, "step_mm"),
        ({"fusion_opacity": 1.5}, "fusion_opacity"),
        ({"fusion_colormap": "nope"}, "colormap"),
        ({"fusion_window": (1, -1)}, "fusion_window"),
    ],
)
def test_bad_requests_name_the_field(kwargs, field):
    args = {"mode": "mpr", "plane": PLANE, **kwargs}
    with pytest.raises(ValueError, match=field):
        ViewRequest(**args)


def test_equal_requests_compare_and_hash_equal():
    a = ViewRequest("mpr", plane=PLANE, window=(40, 400))
    b = ViewRequest("MPR", plane=Plane((0, 0, 0), (2, 0, 0), (0, 1, 0), 1.0, 16, 8), window=[40.0, 400.0])
    assert a == b and hash(a) == hash(b)
    assert a != ViewRequest("mpr", plane=PLANE.scroll(1.0), window=(40, 400))
