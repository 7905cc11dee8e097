"""The cupy backend on a CUDA device: residency, the filtered texture's precision (the reason the
projections sample in float and only compositing uses the texture), and parity with the numpy
reference on the demo phantom. The random-volume parity runs in test_backends_parity.py.

Skipped as a whole, decided once, where no CUDA device answers."""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.render.engine.backends import cupy_backend, get_backend
from voxcast.render.engine.backends.numpy_backend import Backend as NumpyBackend
from voxcast.render.engine.rays import RayGrid, Shading

pytestmark = pytest.mark.gpu
if not cupy_backend.is_available():
    pytest.skip(f"cupy backend unavailable: {cupy_backend.missing()}", allow_module_level=True)

REFERENCE = NumpyBackend()
# 8 fractional bits per weight: each axis's weight is off by at most 2**-9.
TEXTURE_WEIGHT_ERROR = 2.0**-9
DISPLAY_LEVEL = 1.0 / 255.0


@pytest.fixture(scope="module")
def backend():
    return get_backend("cupy")


@pytest.fixture(scope="module")
def phantom():
    from voxcast.demo.phantom import make_ct_phantom

    return make_ct_phantom("small")


def test_volume_is_uploaded_once_and_stays_resident(backend, rng):
    import cupy

    voxels = rng.normal(0, 100, size=(10, 12, 14)).astype(np.float32)
    handle = backend.prepare(voxels)
    assert isinstance(handle.voxels, cupy.ndarray)
    pointer = handle.voxels.data.ptr
    grid = RayGrid(np.array([0.5, 0.5, 0.5]), np.eye(3)[2], np.eye(3)[1], np.eye(3)[0], 13, 11, 9)
    first = backend.project(handle, grid, "max")
    second = backend.project(handle, grid, "max")
    np.testing.assert_array_equal(first, second)
    assert handle.voxels.data.ptr == pointer
    np.testing.assert_array_equal(cupy.asnumpy(handle.voxels), voxels)


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_texture_precision_is_bounded_and_exact_sampler_matches_reference(backend, rng, dtype):
    voxels = np.round(rng.normal(0, 500, size=(9, 10, 11))).astype(dtype)
    handle = backend.prepare(voxels)
    points = rng.uniform(-0.5, 1.5, size=(20000, 3)) * (np.asarray(voxels.shape) - 1)
    exact, filtered = backend.sample(handle, points)
    from voxcast.render.engine.backends.numpy_backend import trilinear

    span = float(voxels.max()) - float(voxels.min())
    np.testing.assert_allclose(exact, trilinear(voxels, points), rtol=0, atol=1e-5 * span)
    error = np.abs(filtered - exact)
    assert error.max() <= 3 * TEXTURE_WEIGHT_ERROR * span + 1e-4 * span
    # ...and that error is far above what MPR/MIP values are held to: why projections sample in float.
    assert error.max() > 1e-5 * span


def test_phantom_projections_and_rendering_match_reference(backend, phantom):
    from test_backends_parity import assert_projection_close
    from voxcast.render.engine.raygrid import default_step_mm, world_grid
    from voxcast.render.engine.transfer import get_transfer
    from voxcast.render.engine.views import oblique

    voxels = phantom.voxels
    handle = backend.prepare(voxels)
    plane = oblique((0.3, 0.8, 0.5), phantom, size=(48, 40))
    thin = world_grid(plane, None).in_index_space(phantom)
    full = world_grid(plane, phantom, step_mm=default_step_mm(phantom, plane.normal, "mip")).in_index_space(
        phantom
    )
    for grid in (thin, full):
        for reducer in ("max", "min", "mean"):
            got = backend.project(handle, grid, reducer)
            assert_projection_close(got, REFERENCE.project(voxels, grid, reducer), voxels)
    vr = world_grid(plane, phantom, step_mm=default_step_mm(phantom, plane.normal, "vr")).in_index_space(
        phantom
    )
    lut = get_transfer("ct-bone").lut(vr.step_mm)
    shading = Shading(np.linalg.inv(phantom.affine[:3, :3]).T, -plane.normal)
    for shade in (None, shading):
        # The filtered texture (the default): within display levels of the reference.
        error = np.abs(
            backend.composite(handle, vr, lut, shade) - REFERENCE.composite(voxels, vr, lut, shade)
        )
        assert error.mean() < 0.25 * DISPLAY_LEVEL
        assert np.percentile(error, 99) < 2 * DISPLAY_LEVEL
        assert error.max() < 16 * DISPLAY_LEVEL
