"""The cupy backend on a CUDA device: residency of the uploaded volume, and parity with the numpy
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


def test_phantom_projections_and_rendering_match_reference(backend, phantom):
    from test_backends_parity import COMPOSITE_ATOL, assert_projection_close
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
        np.testing.assert_allclose(
            backend.composite(handle, vr, lut, shade),
            REFERENCE.composite(voxels, vr, lut, shade),
            rtol=0,
            atol=COMPOSITE_ATOL,
        )
