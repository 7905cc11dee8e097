"""The NumPy reference backend against independent computations: stored voxels, numpy
reductions, and scipy.ndimage.map_coordinates (order=1 is trilinear interpolation)."""

from __future__ import annotations

import numpy as np
import pytest
from render_volumes import make_volume, random_oblique_volume
from scipy.ndimage import map_coordinates
from voxcast.render.engine import (
    ViewRequest,
    axial,
    coronal,
    oblique,
    prepare_volume,
    render,
    sagittal,
)
from voxcast.render.engine.raygrid import world_grid
from voxcast.render.engine.rays import INSIDE_TOL


def values(volume, request, **kw):
    return render(prepare_volume(volume, "numpy"), request, **kw).values


@pytest.fixture
def axial_volume(rng):
    # 7 slices of 2.5 mm, 9 rows of 0.8 mm, 11 columns of 0.7 mm, int16 like CT.
    voxels = rng.integers(-1000, 2000, size=(7, 9, 11)).astype(np.int16)
    return make_volume(voxels, spacing=(2.5, 0.8, 0.7), origin=(-30.0, 12.0, 100.0))


def test_axis_aligned_mpr_at_voxel_spacing_returns_the_stored_voxels(axial_volume):
    # Pixel = in-plane spacing and image centre on the middle voxel: every pixel is a voxel centre.
    vox = axial_volume.voxels.astype(np.float32)
    k, r, c = 3, 4, 5  # the middle row and column of a 9 x 11 slice
    vol = make_volume(axial_volume.voxels, spacing=(2.5, 0.7, 0.7), origin=axial_volume.origin)
    centre = vol.index_to_world((k, r, c))
    got = values(vol, ViewRequest("mpr", plane=axial(vol, centre, size=(11, 9), pixel_mm=0.7)))
    np.testing.assert_array_equal(got, vox[k])
    # Coronal and sagittal: top = superior, so slices run bottom to top; sagittal left = anterior.
    cube = make_volume(axial_volume.voxels, spacing=(0.7, 0.7, 0.7), origin=axial_volume.origin)
    centre = cube.index_to_world((k, r, c))
    got = values(cube, ViewRequest("mpr", plane=coronal(cube, centre, size=(11, 7), pixel_mm=0.7)))
    np.testing.assert_array_equal(got, vox[::-1, r, :])
    got = values(cube, ViewRequest("mpr", plane=sagittal(cube, centre, size=(9, 7), pixel_mm=0.7)))
    np.testing.assert_array_equal(got, vox[::-1, :, c])


def test_mpr_outside_the_volume_is_nan_and_black(axial_volume):
    vol = axial_volume
    plane = axial(vol, size=(64, 64), pixel_mm=1.0)
    image = render(
        prepare_volume(vol, "numpy"), ViewRequest("mpr", plane=plane, window=(0, 100), invert=True)
    )
    outside = np.isnan(image.values)
    assert outside.any() and (~outside).any()
    assert np.all(image.rgb[outside] == 0)
    far = render(prepare_volume(vol, "numpy"), ViewRequest("mpr", plane=plane.scroll(500)))
    assert np.all(np.isnan(far.values)) and not far.rgb.any()


def reference_samples(volume, grid):
    """Every sample of a grid through map_coordinates, with the contract's inside test."""
    v, u, k = np.meshgrid(
        np.arange(grid.height), np.arange(grid.width), np.arange(grid.nsamples), indexing="ij"
    )
    p = grid.origin + v[..., None] * grid.dv + u[..., None] * grid.du + k[..., None] * grid.dk
    n = np.array(volume.shape)
    inside = np.all((p >= -INSIDE_TOL) & (p <= n - 1 + INSIDE_TOL), axis=-1)
    coords = np.clip(p, 0, n - 1).reshape(-1, 3).T
    x = map_coordinates(volume.voxels.astype(np.float64), coords, order=1, mode="nearest").reshape(
        inside.shape
    )
    return np.where(inside, x, np.nan)


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_oblique_mpr_matches_map_coordinates(rng, dtype):
    for _ in range(3):
        vol = random_oblique_volume(rng, dtype=dtype)
        plane = oblique(rng.normal(size=3), vol, center=vol.center + rng.normal(0, 5, 3), size=(40, 33))
        got = values(vol, ViewRequest("mpr", plane=plane))
        want = reference_samples(vol, world_grid(plane, None).in_index_space(vol))[..., 0]
        assert np.array_equal(np.isnan(got), np.isnan(want))
        # float32 output of values around 100: 1e-3 absolute is a few float32 ulps.
        np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-6)


@pytest.mark.parametrize(("mode", "reduce"), [("mip", np.max), ("minip", np.min), ("avgip", np.mean)])
def test_axis_aligned_projections_match_numpy(axial_volume, mode, reduce):
    vol = axial_volume
    vox = vol.voxels.astype(np.float64)
    cube = make_volume(vol.voxels, spacing=(2.5, 0.7, 0.7), origin=vol.origin)
    # Axial projection looks along +Z, the slice axis: one sample per slice at the default step.
    got = values(cube, ViewRequest(mode, plane=axial(cube, size=(11, 9), pixel_mm=0.7)))
    np.testing.assert_allclose(got, reduce(vox, axis=0), rtol=1e-6)
    cube = make_volume(vol.voxels, spacing=(0.7, 0.7, 0.7), origin=vol.origin)
    got = values(cube, ViewRequest(mode, plane=coronal(cube, size=(11, 7), pixel_mm=0.7)))
    np.testing.assert_allclose(got, reduce(vox, axis=1)[::-1], rtol=1e-6)
    got = values(cube, ViewRequest(mode, plane=sagittal(cube, size=(9, 7), pixel_mm=0.7)))
    np.testing.assert_allclose(got, reduce(vox, axis=2)[::-1], rtol=1e-6)


def test_thick_slab_combines_the_slices_within_half_the_thickness(axial_volume):
    vol = make_volume(axial_volume.voxels, spacing=(2.5, 0.7, 0.7), origin=axial_volume.origin)
    vox = vol.voxels.astype(np.float64)
    centre = vol.index_to_world((3, 4, 5))
    plane = axial(vol, centre, size=(11, 9), pixel_mm=0.7)
    # 5.5 mm: the centre slice and one 2.5 mm slice on each side (the next ones are 5 mm away).
    for slab_mode, reduce in (("mip", np.max), ("minip", np.min), ("mean", np.mean)):
        got = values(vol, ViewRequest("mpr", plane=plane, slab_mm=5.5, slab_mode=slab_mode))
        np.testing.assert_allclose(got, reduce(vox[2:5], axis=0), rtol=1e-6)
    # A slab projection is the same thing.
    got = values(vol, ViewRequest("mip", plane=plane, slab_mm=5.5))
    np.testing.assert_allclose(got, vox[2:5].max(axis=0), rtol=1e-6)


@pytest.mark.parametrize(("mode", "reduce"), [("mip", np.fmax), ("minip", np.fmin)])
def test_oblique_projections_match_map_coordinates(rng, mode, reduce):
    vol = random_oblique_volume(rng, shape=(16, 18, 20))
    plane = oblique(rng.normal(size=3), vol, size=(30, 26))
    request = ViewRequest(mode, plane=plane, step_mm=0.9)
    got = values(vol, request)
    want = reduce.reduce(
        reference_samples(vol, world_grid(plane, vol, step_mm=0.9).in_index_space(vol)), axis=-1
    )
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-6)


def test_avgip_is_the_mean_of_the_inside_samples(rng):
    vol = random_oblique_volume(rng, shape=(16, 18, 20))
    plane = oblique(rng.normal(size=3), vol, size=(30, 26))
    got = values(vol, ViewRequest("avgip", plane=plane, step_mm=0.9))
    samples = reference_samples(vol, world_grid(plane, vol, step_mm=0.9).in_index_space(vol))
    hit = np.any(~np.isnan(samples), axis=-1)
    want = np.full(got.shape, np.nan)
    want[hit] = np.nanmean(samples[hit], axis=-1)
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-6)
