"""PET/CT fusion on the demo phantom: the PET is sampled at the CT view's world points, so a
lesion of known position shows over the CT pixel at that position."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from voxcast.render.engine import ViewRequest, axial, coronal, prepare_volume, render
from voxcast.render.engine.raygrid import world_grid

from voxcast.demo.phantom import make_ct_phantom, make_pet_phantom


@pytest.fixture(scope="module")
def study():
    ct = make_ct_phantom("small")
    pet, lesions = make_pet_phantom(ct)
    return prepare_volume(ct, "numpy"), prepare_volume(pet, "numpy"), lesions


def hot_centroid(intensity: np.ndarray, threshold: float) -> tuple[float, float]:
    v, u = np.nonzero(intensity >= threshold)
    assert v.size, "no hot pixel"
    return float(v.mean()), float(u.mean())


def test_lesions_show_over_the_ct_pixels_at_their_world_positions(study):
    ct, pet, lesions = study
    for lesion in lesions:
        centre = np.array(lesion["center_lps"])
        plane = axial(ct.volume, center=centre, size=(128, 128), pixel_mm=2.0)
        # Opacity 1 and a grey map over 0..12 SUV: the fused picture is the PET at the CT's points.
        request = ViewRequest(
            "mpr", plane=plane, fusion_opacity=1.0, fusion_colormap="grayscale", fusion_window=(6.0, 12.0)
        )
        fused = render(ct, request, fusion=pet).rgb[..., 0] / 255.0 * 12.0
        # Half the lesion's SUV over the background: the hot region is the lesion's cross-section.
        v, u = hot_centroid(fused, lesion["suv"] * 0.75)
        # Within one PET voxel (12.5 mm = 6.25 pixels) of where the lesion centre is: the PET grid
        # only approximates the sphere's edge.
        assert abs(v - 63.5) <= 6.25 and abs(u - 63.5) <= 6.25, (lesion["label"], v, u)
        assert fused[64, 64] >= lesion["suv"] * 0.75


def test_pet_mip_over_ct_mip_shows_the_hottest_lesion_where_it_projects(study):
    ct, pet, lesions = study
    plane = coronal(ct.volume, size=(128, 128))
    request = ViewRequest(
        "mip", plane=plane, fusion_opacity=1.0, fusion_colormap="grayscale", fusion_window=(6.0, 12.0)
    )
    image = render(ct, request, fusion=pet)
    hottest = max(lesions, key=lambda lesion: lesion["suv"])
    suv = image.rgb[..., 0] / 255.0 * 12.0
    want_v, want_u = plane.world_to_pixel(hottest["center_lps"])
    pet_voxel = 12.5 / plane.pixel_mm  # pixels per PET voxel
    # The PET is sampled at the CT's points, which straddle the PET voxels: the MIP reads a little
    # under the lesion's SUV. Around the lesion's projection (3 PET voxels), the peak is at it.
    r = int(3 * pet_voxel)
    v0, u0 = int(round(want_v)) - r, int(round(want_u)) - r
    window = suv[max(v0, 0) : v0 + 2 * r + 1, max(u0, 0) : u0 + 2 * r + 1]
    assert window.max() >= 0.7 * hottest["suv"]
    v, u = hot_centroid(window, 0.9 * window.max())
    assert abs(v + max(v0, 0) - want_v) <= pet_voxel and abs(u + max(u0, 0) - want_u) <= pet_voxel
    assert image.values is None and image.labels == (plane.labels.top, "I", "R", "L")


def test_fused_colour_is_the_alpha_blend_of_the_two_layers(study):
    ct, pet, _ = study
    plane = axial(ct.volume, size=(64, 64))
    base = ViewRequest("mpr", plane=plane, preset="soft-tissue")
    ct_rgb = render(ct, base).rgb.astype(float)
    pet_rgb = render(pet, dataclasses.replace(base, preset="suv", colormap="hot-iron")).rgb.astype(float)
    fused = render(ct, dataclasses.replace(base, fusion_opacity=0.3), fusion=pet).rgb.astype(float)
    # Rounding to uint8 of each layer and of the blend: at most one grey level apart.
    np.testing.assert_allclose(fused, 0.7 * ct_rgb + 0.3 * pet_rgb, atol=1.0)


def test_fusion_samples_the_same_world_points_in_the_second_volume(study):
    ct, pet, _ = study
    plane = coronal(ct.volume, size=(16, 12))
    wgrid = world_grid(plane, ct.volume, step_mm=3.0)
    for volume in (ct.volume, pet.volume):
        grid = wgrid.in_index_space(volume)
        for v, u, k in ((0, 0, 0), (11, 15, wgrid.nsamples - 1), (5, 7, 3)):
            world = plane.pixel_to_world(v, u) + (wgrid.origin - plane.top_left) + k * wgrid.dk
            np.testing.assert_allclose(
                grid.origin + v * grid.dv + u * grid.du + k * grid.dk, volume.world_to_index(world), atol=1e-9
            )


def test_fusion_needs_the_same_frame_of_reference(study):
    ct, pet, _ = study
    other = dataclasses.replace(pet.volume, frame_of_reference_uid="1.2.3")
    with pytest.raises(ValueError, match="fusion: frame of reference"):
        render(
            ct, ViewRequest("mpr", plane=axial(ct.volume, size=(8, 8))), fusion=prepare_volume(other, "numpy")
        )


def test_pet_alone_renders_in_suv(study):
    _, pet, lesions = study
    lesion = lesions[0]
    plane = axial(pet.volume, center=lesion["center_lps"], size=(32, 32), pixel_mm=4.0)
    image = render(pet, ViewRequest("mpr", plane=plane))
    # The voxel at the lesion centre holds exactly its SUV; neighbours within the sphere too.
    assert image.values[16, 16] == pytest.approx(lesion["suv"], rel=0.05)
    assert image.window == (2.5, 5.0)
