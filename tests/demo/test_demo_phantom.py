"""The synthetic torso: plausible HU and SUV where the anatomy says, same patient on every grid."""

from __future__ import annotations

import numpy as np
import pytest

from voxcast.demo import SIZES, make_ct_phantom, make_pet_phantom
from voxcast.volume import Volume


@pytest.fixture(scope="module")
def ct():
    return make_ct_phantom("small", seed=0)


@pytest.fixture(scope="module")
def pet(ct):
    return make_pet_phantom(ct, seed=0)


def value_at(volume: Volume, lps, radius_voxels: int = 0) -> np.ndarray:
    """The voxel nearest to `lps` and its in-plane neighbours up to `radius_voxels` away."""
    k, r, c = np.rint(volume.world_to_index(lps)).astype(int)
    n = radius_voxels
    return volume.voxels[k, r - n : r + n + 1, c - n : c + n + 1].astype(np.float64)


def test_ct_grid_is_axial_lps_and_centred(ct):
    grid = SIZES["small"].ct
    assert ct.shape == grid.shape and ct.voxels.dtype == np.int16
    assert np.allclose(ct.spacing, grid.spacing)
    assert np.allclose(ct.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert np.allclose(ct.center, 0.0, atol=1e-9)
    assert ct.modality == "CT" and ct.units == "HU" and ct.frame_of_reference_uid


@pytest.mark.parametrize(
    "lps, low, high",
    [
        ((0.0, -180.0, 0.0), -1030, -970),  # air in front of the patient
        ((-90.0, 20.0, 120.0), -880, -820),  # right lung
        ((-65.0, 5.0, 40.0), 45, 70),  # liver
        ((0.0, 62.0, 105.0), 450, 1200),  # vertebral body (marrow inside its cortex)
        ((0.0, -5.0, -120.0), 15, 45),  # abdominal viscera
        ((136.0, 0.0, -100.0), 30, 60),  # lateral abdominal wall muscle
    ],
)
def test_ct_tissues_have_their_hounsfield_values(ct, lps, low, high):
    assert low <= value_at(ct, lps, 1).mean() <= high


def test_ct_has_fat_outline_bone_and_noise(ct):
    v = ct.voxels
    assert v.min() >= -1024 and v.max() >= 900  # cortical bone / ribs
    assert np.mean((v > 700) & (v < 1300)) > 0.003
    middle = v[v.shape[0] // 2]
    centre_row = middle[middle.shape[0] // 2]
    inside = np.nonzero(centre_row > -500)[0]
    assert -140 <= centre_row[inside[0] + 1] <= -60  # subcutaneous fat at the body edge
    air = v[:, :2, :].astype(np.float64)
    assert 5 < air.std() < 20  # seeded noise, not a flat image


def test_larger_sizes_image_the_same_patient():
    medium = make_ct_phantom("medium", seed=0)
    assert medium.shape == (160, 256, 256)
    assert np.allclose(medium.spacing, (3.0, 1.5625, 1.5625))
    for lps in [(-65.0, 5.0, 40.0), (-90.0, 20.0, 120.0)]:
        assert (
            abs(value_at(medium, lps, 2).mean() - value_at(make_ct_phantom("small", 0), lps, 1).mean()) < 25
        )


def test_pet_shares_the_frame_but_not_the_grid(ct, pet):
    volume, _ = pet
    assert volume.frame_of_reference_uid == ct.frame_of_reference_uid
    assert volume.modality == "PT" and volume.units == "SUVbw"
    assert volume.shape == SIZES["small"].pet.shape
    assert not np.allclose(volume.origin, ct.origin) and not np.allclose(volume.spacing, ct.spacing)
    assert np.all(volume.spacing > ct.spacing)


def test_pet_lesions_have_their_known_suv(pet):
    volume, lesions = pet
    assert sorted(lesion["suv"] for lesion in lesions) == [4.0, 8.0, 12.0]
    for lesion in lesions:
        assert value_at(volume, lesion["center_lps"]).item() == pytest.approx(lesion["suv"])
        assert lesion["radius_mm"] > 0.5 * np.linalg.norm(volume.spacing)


def test_pet_background_uptake(pet):
    volume, _ = pet
    assert value_at(volume, (0.0, -240.0, 0.0)).item() == 0.0  # outside the body
    assert 1.6 <= value_at(volume, (-40.0, 20.0, 30.0), 1).mean() <= 2.4  # liver ~2
    assert 0.7 <= value_at(volume, (0.0, -10.0, -120.0), 1).mean() <= 1.3  # abdomen ~1
    assert value_at(volume, (-95.0, 30.0, 110.0), 1).mean() < 0.7  # lung


def test_pet_from_size_equals_pet_from_ct(ct, pet):
    from_size, lesions = make_pet_phantom("small", seed=0)
    assert np.array_equal(from_size.voxels, pet[0].voxels) and lesions == pet[1]
    assert from_size.frame_of_reference_uid == ct.frame_of_reference_uid


def test_seed_decides_everything(ct):
    assert np.array_equal(make_ct_phantom("small", seed=0).voxels, ct.voxels)
    other = make_ct_phantom("small", seed=1)
    assert not np.array_equal(other.voxels, ct.voxels)
    assert other.frame_of_reference_uid != ct.frame_of_reference_uid
    assert make_ct_phantom("medium", 0).frame_of_reference_uid != ct.frame_of_reference_uid


def test_bad_arguments():
    with pytest.raises(ValueError, match="known: small, medium, large"):
        make_ct_phantom("huge")
    with pytest.raises(ValueError, match="non-negative integer"):
        make_ct_phantom("small", seed=-1)
    with pytest.raises(ValueError, match="non-negative integer"):
        make_pet_phantom("small", seed=1.5)
    stranger = Volume.from_geometry(np.zeros((3, 4, 5), np.int16), (0, 0, 0), (1, 1, 1), np.eye(3))
    with pytest.raises(ValueError, match="not made by make_ct_phantom"):
        make_pet_phantom(stranger)
