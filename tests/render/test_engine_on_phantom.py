"""The whole engine (views, ray grids, backends, post-processing, fusion, previews) on the demo
phantom: each fast backend renders every mode as the NumPy reference does.

Tolerances: the fast backends compute the same float64 samples up to summation order, then round
once to float32, so values agree to 1e-3 HU/SUV (CT values reach ~3000: a few float32 ulps). The
displayed RGB may differ by one grey level where a value sits on a rounding edge.
"""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.render.engine import ViewRequest, axial, coronal, oblique, prepare_volume, render
from voxcast.render.engine.backends import availability

from voxcast.demo.phantom import make_ct_phantom, make_pet_phantom

RGB_LEVELS = 1


@pytest.fixture(scope="module")
def phantom():
    ct = make_ct_phantom("small")
    pet, _ = make_pet_phantom(ct)
    return prepare_volume(ct, "numpy"), prepare_volume(pet, "numpy")


@pytest.fixture(params=["numba", pytest.param("cupy", marks=pytest.mark.gpu)])
def fast(request):
    ok, why = availability(request.param)
    if not ok:
        pytest.skip(f"{request.param}: {why}")
    return request.param


def views(volume):
    size = (72, 56)
    return {
        "axial": axial(volume, size=size),
        "coronal": coronal(volume, center=volume.center + (10, -5, 30), size=size, pixel_mm=4.0),
        "oblique": oblique((0.4, -0.3, 1.0), volume, size=size),
    }


REQUESTS = {
    "mpr": {"mode": "mpr"},
    "slab-mip": {"mode": "mpr", "slab_mm": 30.0},
    "slab-mean": {"mode": "mpr", "slab_mm": 20.0, "slab_mode": "mean"},
    "mip": {"mode": "mip", "preset": "bone"},
    "minip": {"mode": "minip", "preset": "lung"},
    "avgip": {"mode": "avgip"},
    "mip-slab": {"mode": "mip", "slab_mm": 40.0},
    "vr": {"mode": "vr", "preset": "ct-bone"},
    "vr-shaded": {"mode": "vr", "preset": "ct-soft-tissue", "shading": True},
}


def assert_same(got, want):
    if want.values is not None:
        assert np.array_equal(np.isnan(got.values), np.isnan(want.values))
        np.testing.assert_allclose(got.values, want.values, atol=1e-3, rtol=1e-6)
    diff = np.abs(got.rgb.astype(int) - want.rgb.astype(int))
    assert diff.max() <= RGB_LEVELS
    assert got.labels == want.labels and got.nsamples == want.nsamples


@pytest.mark.parametrize("name", REQUESTS)
def test_every_mode_matches_the_reference(phantom, fast, name):
    ct, _ = phantom
    for view in views(ct.volume).values():
        request = ViewRequest(plane=view, **REQUESTS[name])
        assert_same(render(ct, request, backend=fast), render(ct, request))


@pytest.mark.parametrize("mode", ["mpr", "mip"])
def test_fusion_and_previews_match_the_reference(phantom, fast, mode):
    ct, pet = phantom
    view = views(ct.volume)["oblique"]
    request = ViewRequest(mode, plane=view, fusion_opacity=0.6)
    assert_same(render(ct, request, fusion=pet, backend=fast), render(ct, request, fusion=pet))
    preview = ViewRequest(mode, plane=view.resized(36, 28))
    assert_same(render(ct, preview, level=1, backend=fast), render(ct, preview, level=1))
