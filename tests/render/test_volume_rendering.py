"""Direct volume rendering: the NumPy backend's compositing against a per-ray reading of
rays.py, opacity correction for the ray step, early ray termination, empty space."""

from __future__ import annotations

import math

import numpy as np
import pytest
from render_volumes import make_volume, random_oblique_volume
from voxcast.render.engine import ViewRequest, coronal, oblique, prepare_volume, render
from voxcast.render.engine.backends import numpy_backend
from voxcast.render.engine.raygrid import world_grid
from voxcast.render.engine.rays import ERT_ALPHA, INSIDE_TOL, Shading, TransferLUT
from voxcast.render.engine.transfer import TRANSFER_PRESETS, TransferFunction


def sample(vox, p):
    """Trilinear interpolation of one point, written the way rays.py states it."""
    p = [min(max(p[a], 0.0), vox.shape[a] - 1) for a in range(3)]
    i0, f = [], []
    for a in range(3):
        n = vox.shape[a]
        if n == 1:
            i0.append(0)
            f.append(0.0)
        else:
            i0.append(min(int(math.floor(p[a])), n - 2))
            f.append(p[a] - i0[-1])
    total = 0.0
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                idx = [
                    min(i0[0] + dz, vox.shape[0] - 1),
                    min(i0[1] + dy, vox.shape[1] - 1),
                    min(i0[2] + dx, vox.shape[2] - 1),
                ]
                w = (f[0] if dz else 1 - f[0]) * (f[1] if dy else 1 - f[1]) * (f[2] if dx else 1 - f[2])
                total += w * float(vox[tuple(idx)])
    return total


def lookup(lut, x):
    last = len(lut.table) - 1
    t = min(max((x - lut.lo) / (lut.hi - lut.lo) * last, 0.0), last)
    i = int(math.floor(t))
    return lut.table[i] * (1 - (t - i)) + lut.table[min(i + 1, last)] * (t - i)


def composite_ray(vox, origin, dk, nsamples, lut, shading):
    colour, alpha = np.zeros(3), 0.0
    for k in range(nsamples):
        if alpha >= ERT_ALPHA:
            break
        p = origin + k * dk
        if any(p[a] < -INSIDE_TOL or p[a] > vox.shape[a] - 1 + INSIDE_TOL for a in range(3)):
            continue
        rgba = lookup(lut, sample(vox, p)).astype(np.float64)
        rgb, a = rgba[:3], rgba[3]
        if shading is not None:
            g = np.array([(sample(vox, p + e) - sample(vox, p - e)) / 2 for e in np.eye(3)])
            n = shading.gradient_matrix @ g
            norm = np.linalg.norm(n)
            if norm < 1e-6:
                rgb = rgb * (shading.ambient + shading.diffuse)
            else:
                d = abs(n @ shading.light) / norm
                rgb = np.minimum(
                    rgb * (shading.ambient + shading.diffuse * d) + shading.specular * d**shading.shininess, 1
                )
        colour += (1 - alpha) * a * rgb
        alpha += (1 - alpha) * a
    return np.append(colour, alpha)


@pytest.mark.parametrize("shaded", [False, True])
def test_compositing_matches_a_per_ray_reading_of_the_contract(rng, shaded):
    vol = random_oblique_volume(rng, shape=(10, 12, 11))
    plane = oblique(rng.normal(size=3), vol, size=(7, 6))
    wgrid = world_grid(plane, vol, step_mm=0.6)
    grid = wgrid.in_index_space(vol)
    lut = TransferFunction(
        ((-200, 1, 0, 0), (0, 0, 1, 0), (200, 0, 0, 1)), ((-200, 0.0), (-50, 0.0), (250, 0.3))
    ).lut(0.6)
    light = -plane.normal
    shading = Shading(np.linalg.inv(vol.affine[:3, :3]).T, light) if shaded else None
    got = numpy_backend.Backend().composite(vol.voxels, grid, lut, shading)
    for v in range(grid.height):
        for u in range(grid.width):
            want = composite_ray(
                vol.voxels, grid.origin + v * grid.dv + u * grid.du, grid.dk, grid.nsamples, lut, shading
            )
            # Both in float64, summed in the same order; float32 output.
            np.testing.assert_allclose(got[v, u], want, atol=1e-5)


def test_opaque_volume_terminates_rays_and_shows_the_transfer_colour():
    vol = make_volume(np.full((20, 20, 20), 100.0, np.float32))
    lut = TransferLUT(np.array([[0.2, 0.4, 0.6, 0.5], [0.2, 0.4, 0.6, 0.5]], np.float32), 0.0, 200.0)
    grid = world_grid(coronal(vol, size=(8, 8)), vol, step_mm=1.0).in_index_space(vol)
    rgba = numpy_backend.Backend().composite(vol.voxels, grid, lut, None)
    # alpha 0.5 per sample: 1 - 0.5**7 = 0.992 is the first value past ERT_ALPHA.
    np.testing.assert_allclose(rgba[..., 3], 1 - 0.5**7, rtol=1e-6)
    np.testing.assert_allclose(
        rgba[..., :3], np.broadcast_to(np.array([0.2, 0.4, 0.6]) * (1 - 0.5**7), (8, 8, 3)), rtol=1e-6
    )


def test_transparent_volume_renders_black():
    vol = make_volume(np.full((12, 12, 12), -1000, np.int16))
    image = render(
        prepare_volume(vol, "numpy"), ViewRequest("vr", plane=coronal(vol, size=(16, 16)), preset="ct-bone")
    )
    assert image.values is None and not image.rgb.any()


def test_opacity_correction_makes_the_picture_independent_of_the_step():
    # A smooth ball of soft tissue: halving the step must not make it twice as opaque.
    z, y, x = np.mgrid[:32, :32, :32]
    ball = (200 * np.exp(-((z - 15.5) ** 2 + (y - 15.5) ** 2 + (x - 15.5) ** 2) / 60.0)).astype(np.float32)
    vol = make_volume(ball)
    prepared = prepare_volume(vol, "numpy")
    plane = coronal(vol, size=(32, 32))
    coarse = render(
        prepared, ViewRequest("vr", plane=plane, preset="ct-soft-tissue", step_mm=0.5)
    ).rgb.astype(float)
    fine = render(prepared, ViewRequest("vr", plane=plane, preset="ct-soft-tissue", step_mm=0.25)).rgb.astype(
        float
    )
    assert coarse.max() > 50
    # Riemann sums of a smooth integrand at two steps: a few grey levels apart at most.
    assert np.abs(coarse - fine).max() <= 6


def test_shading_darkens_surfaces_seen_edge_on():
    z, y, x = np.mgrid[:24, :24, :24]
    r = np.sqrt((z - 11.5) ** 2 + (y - 11.5) ** 2 + (x - 11.5) ** 2)
    vol = make_volume(np.where(r < 9, 1000, -1000).astype(np.int16))
    prepared = prepare_volume(vol, "numpy")
    request = ViewRequest("vr", plane=coronal(vol, size=(24, 24)), preset="ct-bone", shading=True)
    rgb = render(prepared, request).rgb.astype(float).sum(axis=2)
    centre, rim = rgb[12, 12], rgb[12, 4]
    assert centre > rim > 0


def test_every_preset_makes_a_picture_of_its_modality(rng):
    vol = make_volume(rng.normal(200, 400, size=(16, 16, 16)).astype(np.float32), modality="CT")
    prepared = prepare_volume(vol, "numpy")
    for name in TRANSFER_PRESETS:
        image = render(prepared, ViewRequest("vr", plane=coronal(vol, size=(12, 12)), preset=name))
        assert image.rgb.shape == (12, 12, 3) and image.rgb.dtype == np.uint8
