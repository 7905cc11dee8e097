"""The shared Volume type: affine conventions every service relies on."""

import numpy as np
import pytest

from voxcast.volume import Volume, make_affine


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_affine_maps_index_axes_along_direction_rows():
    direction = _rotation(1)
    spacing = [2.5, 0.7, 0.8]
    vol = Volume.from_geometry(np.zeros((4, 5, 6), np.int16), [10, -20, 30], spacing, direction)
    np.testing.assert_allclose(vol.index_to_world([0, 0, 0]), [10, -20, 30])
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = 1
        delta = vol.index_to_world(step) - vol.origin
        np.testing.assert_allclose(delta, direction[axis] * spacing[axis], atol=1e-12)
    np.testing.assert_allclose(vol.spacing, spacing)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-12)


def test_world_to_index_inverts_index_to_world():
    vol = Volume(np.zeros((3, 4, 5), np.float32), make_affine([1, 2, 3], [1, 2, 3], _rotation(2)))
    idx = np.random.default_rng(0).uniform(0, 4, size=(10, 3))
    np.testing.assert_allclose(vol.world_to_index(vol.index_to_world(idx)), idx, atol=1e-9)


def test_center_and_geometry_dict():
    vol = Volume.from_geometry(np.zeros((3, 5, 7), np.int16), [0, 0, 0], [2, 1, 1], np.eye(3))
    np.testing.assert_allclose(vol.center, [2, 2, 3])  # x<-slice, y<-row, z<-column with identity rows
    g = vol.geometry_dict()
    assert g["shape"] == [3, 5, 7] and g["spacing_mm"] == [2, 1, 1] and g["origin_lps"] == [0, 0, 0]


@pytest.mark.parametrize("shape", [(4, 4), (1, 2, 3, 4)])
def test_rejects_non_3d_voxels(shape):
    with pytest.raises(ValueError, match="3-D"):
        Volume(np.zeros(shape), np.eye(4))


def test_rejects_singular_affine():
    with pytest.raises(ValueError, match="singular"):
        Volume(np.zeros((2, 2, 2)), np.diag([1, 1, 0, 1]))
