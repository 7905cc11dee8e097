"""The 2x and 4x copies: voxel values are block means, world positions stay right, and a
preview rendered from them matches the full-resolution picture of a smooth volume."""

from __future__ import annotations

import numpy as np
import pytest
from render_volumes import make_volume, random_oblique_volume
from voxcast.render.engine import ViewRequest, axial, oblique, prepare_volume, render
from voxcast.render.engine.multires import downsample


def test_coarse_voxel_is_the_mean_of_its_block_at_their_mean_position(rng):
    vol = random_oblique_volume(rng, shape=(8, 10, 6))
    coarse = downsample(vol)
    assert coarse.shape == (4, 5, 3)
    np.testing.assert_allclose(coarse.voxels[1, 2, 0], vol.voxels[2:4, 4:6, 0:2].mean(), rtol=1e-5)
    block = np.array([[a, b, c] for a in (2, 3) for b in (4, 5) for c in (0, 1)], dtype=float)
    np.testing.assert_allclose(
        coarse.index_to_world((1, 2, 0)), vol.index_to_world(block).mean(axis=0), atol=1e-9
    )
    np.testing.assert_allclose(coarse.spacing, 2 * vol.spacing)
    assert coarse.frame_of_reference_uid == vol.frame_of_reference_uid and coarse.modality == vol.modality


def test_odd_and_single_axes():
    vol = make_volume(np.arange(3 * 1 * 5, dtype=np.float32).reshape(3, 1, 5))
    coarse = downsample(vol)
    assert coarse.shape == (2, 1, 3)
    # The last of an odd axis is padded with itself.
    assert coarse.voxels[1, 0, 2] == vol.voxels[2, 0, 4]
    np.testing.assert_allclose(coarse.spacing, (2, 1, 2))


def test_prepared_volume_has_three_levels_and_counts_its_bytes():
    vol = make_volume(np.zeros((16, 16, 16), np.int16))
    prepared = prepare_volume(vol, "numpy")
    assert [level.shape for level in prepared.levels] == [(16, 16, 16), (8, 8, 8), (4, 4, 4)]
    assert prepared.nbytes == 16**3 * 2 + (8**3 + 4**3) * 4
    with pytest.raises(ValueError, match="level"):
        prepared.level(3)


@pytest.mark.parametrize("mode", ["mpr", "mip", "avgip"])
def test_preview_matches_the_full_picture_of_a_smooth_volume(rng, mode):
    vol = random_oblique_volume(rng, shape=(32, 32, 32))
    p = vol.world_to_index(vol.index_to_world(np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), -1)))
    # A linear ramp is reproduced exactly by block means and trilinear interpolation.
    vol.voxels[...] = (p @ np.array([3.0, -2.0, 1.0])).astype(np.float32)
    prepared = prepare_volume(vol, "numpy")
    plane = oblique(rng.normal(size=3), vol, size=(24, 24), pixel_mm=1.0)
    full = render(prepared, ViewRequest(mode, plane=plane)).values
    preview = render(prepared, ViewRequest(mode, plane=plane), level=1).values
    both = ~np.isnan(full) & ~np.isnan(preview)
    assert both.mean() > 0.5
    if mode == "mpr":
        # Linear data: only float32 rounding.
        np.testing.assert_allclose(preview[both], full[both], atol=1e-2)
    else:
        # Fewer, coarser samples along the ray: the extent differs by up to one coarse voxel,
        # a ramp of slope <= 3 per fine voxel makes that <= 6 units on values spanning ~200.
        assert np.median(np.abs(preview[both] - full[both])) <= 6


def test_preview_of_an_axial_image_uses_the_coarse_copy():
    vol = make_volume(np.ones((16, 16, 16), np.int16) * 100)
    image = render(prepare_volume(vol, "numpy"), ViewRequest("mip", plane=axial(vol, size=(8, 8))), level=2)
    assert image.level == 2 and image.nsamples == 4
    # The coarse voxel centres stop 1.5 fine voxels short of the edge: the rim is outside.
    np.testing.assert_allclose(image.values[1:-1, 1:-1], 100)


@pytest.mark.parametrize("mode", ["mip", "minip", "avgip"])
def test_oblique_preview_steps_one_coarse_voxel(rng, mode):
    """A whole-volume preview from the 2x copy takes that copy's own one-voxel step: about half
    the samples per ray of the full picture, each step twice as long in mm."""
    vol = random_oblique_volume(rng, shape=(40, 36, 44))
    prepared = prepare_volume(vol, "numba")
    plane = oblique((0.35, 0.9, 0.25), vol, size=(16, 16))
    full = render(prepared, ViewRequest(mode, plane=plane))
    preview = render(prepared, ViewRequest(mode, plane=plane.resized(8, 8)), level=1)
    assert preview.level == 1
    assert abs(preview.nsamples - full.nsamples / 2) <= 2
