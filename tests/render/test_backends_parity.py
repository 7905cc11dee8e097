"""The fast backends (numba; cupy where a CUDA device answers) against the numpy reference, on fresh
random volumes and random oblique ray grids: rays partly or entirely outside, single-slice volumes,
int16 and float32 voxels, thin MPR, slabs, whole-volume projections and compositing.

Tolerances, and why:
- projections: both sides compute in float64 on the CPU (numba) and round once to float32, so they
  differ by a float32 rounding of the value plus float64 noise: atol = 1e-5 of the voxel range.
  The GPU computes positions in float64 and values in float32: 1e-5 of the range covers its rounding too.
  Where a ray has no inside sample (NaN) must agree exactly.
- compositing (premultiplied RGBA in [0, 1]): 1e-5 (float64 rounding through <= 200 samples; the GPU
  samples and shades in float32 but accumulates colour and opacity in float64, as the reference, so
  that early ray termination stops every ray at the same sample).
"""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.render.engine.backends import availability, get_backend
from voxcast.render.engine.backends.numpy_backend import Backend as NumpyBackend
from voxcast.render.engine.rays import RayGrid, Shading, TransferLUT

REFERENCE = NumpyBackend()
COMPOSITE_ATOL = 1e-5

FAST_BACKENDS = [
    pytest.param("numba", id="numba"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
]


@pytest.fixture(params=FAST_BACKENDS)
def backend(request):
    ok, why = availability(request.param)
    if not ok:
        pytest.skip(f"{request.param} backend unavailable: {why}")
    return get_backend(request.param)


# ---------------------------------------------------------------------------- random inputs


def random_voxels(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Noise over a few bright and dark blobs, so that block skipping has structure to skip."""
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    vox = rng.normal(0.0, 40.0, size=shape)
    for _ in range(4):
        c = rng.uniform(0, 1, 3) * (np.asarray(shape) - 1)
        r = rng.uniform(1.5, 6.0)
        d2 = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2
        vox += rng.choice([-1.0, 1.0]) * rng.uniform(300, 1500) * np.exp(-d2 / (2 * r * r))
    if np.dtype(dtype) == np.int16:
        vox = np.round(vox)
    return vox.astype(dtype)


def random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def random_grid(rng: np.random.Generator, shape, nsamples: int, *, reach: float = 0.35) -> RayGrid:
    """An oblique grid centred somewhere around the volume (outside by up to `reach` of its size)."""
    n = np.asarray(shape, dtype=np.float64) - 1
    width, height = (int(x) for x in rng.integers(6, 30, size=2))
    du = random_unit(rng) * rng.uniform(0.4, 1.6)
    dv = np.cross(du, random_unit(rng))
    dv *= rng.uniform(0.4, 1.6) / np.linalg.norm(dv)
    dk = random_unit(rng) * rng.uniform(0.3, 1.2)
    centre = rng.uniform(-reach, 1 + reach, size=3) * np.maximum(n, 1)
    origin = centre - (width - 1) / 2 * du - (height - 1) / 2 * dv - (nsamples - 1) / 2 * dk
    return RayGrid(origin, du, dv, dk, width, height, nsamples, step_mm=float(np.linalg.norm(dk)))


def random_lut(rng: np.random.Generator, lo: float, hi: float, size: int = 128) -> TransferLUT:
    """Random colours; alpha zero over random stretches (empty space) and up to 0.35 elsewhere."""
    table = rng.uniform(0, 1, size=(size, 4)).astype(np.float32)
    table[:, 3] *= 0.35
    for _ in range(2):
        a, b = sorted(rng.integers(0, size, size=2))
        table[a:b, 3] = 0.0
    return TransferLUT(table, lo, hi)


def random_shading(rng: np.random.Generator) -> Shading:
    affine = np.diag(rng.uniform(0.5, 2.0, size=3)) @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    return Shading(np.linalg.inv(affine).T, random_unit(rng), shininess=float(rng.uniform(5, 40)))


SHAPES = [(1, 17, 23), (2, 9, 13), (20, 24, 28), (33, 12, 40)]
DTYPES = [np.int16, np.float32]


def assert_projection_close(got: np.ndarray, want: np.ndarray, voxels: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="inside/outside differ")
    span = float(voxels.max()) - float(voxels.min()) + 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * span, equal_nan=True)


# ---------------------------------------------------------------------------- projections


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reducer", ["max", "min", "mean"])
@pytest.mark.parametrize("nsamples", [1, 9, 70])
def test_project_matches_reference(backend, rng, shape, dtype, reducer, nsamples):
    voxels = random_voxels(rng, shape, dtype)
    handle = backend.prepare(voxels)
    for _ in range(3):
        grid = random_grid(rng, shape, nsamples)
        got = backend.project(handle, grid, reducer)
        assert_projection_close(got, REFERENCE.project(voxels, grid, reducer), voxels)


def test_project_long_rays_skip_blocks_exactly(backend, rng):
    """Whole-volume rays through structured data: block skipping and the warm start must not change
    the extreme found, for rays along and against every axis and obliquely."""
    voxels = random_voxels(rng, (40, 36, 44), np.int16)
    handle = backend.prepare(voxels)
    directions = [np.eye(3)[a] * s for a in range(3) for s in (1, -1)] + [random_unit(rng) for _ in range(4)]
    for d in directions:
        dk = d * 0.7
        u = np.cross(d, random_unit(rng))
        u /= np.linalg.norm(u)
        du, dv = u * 0.9, np.cross(d, u) * 0.9
        centre = (np.asarray(voxels.shape) - 1) / 2
        origin = centre - 20 * du - 18 * dv - 50 * dk
        grid = RayGrid(origin, du, dv, dk, 41, 37, 101, 0.7)
        for reducer in ("max", "min"):
            got = backend.project(handle, grid, reducer)
            assert_projection_close(got, REFERENCE.project(voxels, grid, reducer), voxels)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(9, 30, 31), (20, 24, 28), (33, 12, 40)])
def test_long_rays_with_sparse_samples_match_reference(backend, rng, shape, dtype):
    """Steps of 1.5 voxels or more on some axis (the preview rung's rays: numba sweeps them tile by
    tile), images wider and taller than a tile with partial tiles, rays partly and entirely outside."""
    voxels = random_voxels(rng, shape, dtype)
    handle = backend.prepare(voxels)
    for _ in range(3):
        grid = random_grid(rng, shape, 60)
        dk = random_unit(rng) * rng.uniform(2.6, 4.0)  # a unit vector's largest component is >= 1/sqrt(3)
        width, height = int(rng.integers(129, 160)), int(rng.integers(9, 14))
        centre = grid.origin + (grid.width - 1) / 2 * grid.du + (grid.height - 1) / 2 * grid.dv
        origin = centre - (width - 1) / 2 * grid.du - (height - 1) / 2 * grid.dv - 30 * dk
        sparse = RayGrid(origin, grid.du, grid.dv, dk, width, height, 60, float(np.linalg.norm(dk)))
        for reducer in ("max", "min", "mean"):
            got = backend.project(handle, sparse, reducer)
            assert_projection_close(got, REFERENCE.project(voxels, sparse, reducer), voxels)


def noisy_ct(rng: np.random.Generator, shape=(48, 40, 56)) -> np.ndarray:
    """A CT-like int16 volume: noisy air clipped at -1024 HU around a body with lungs and bone.
    Every air block then holds -1024 while the trilinear samples (means of noisy voxels) seldom
    do: a MinIP can skip almost no air block, and the walk must still find the exact minimum."""
    zz, yy, xx = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    vox = -1000.0 + rng.normal(0.0, 15.0, size=shape)
    body = yy**2 / 0.7 + xx**2 / 0.8 < 0.8
    vox[body] = 40.0 + rng.normal(0.0, 15.0, size=int(body.sum()))
    lungs = body & ((np.abs(xx) - 0.35) ** 2 + yy**2 < 0.08) & (np.abs(zz) < 0.7)
    vox[lungs] = -850.0 + rng.normal(0.0, 30.0, size=int(lungs.sum()))
    vox[body & (yy**2 + xx**2 < 0.02)] = 900.0  # a bone
    return np.clip(np.round(vox), -1024, 3071).astype(np.int16)


def test_projections_through_noisy_air_match_reference(backend, rng):
    """Whole-volume MIP / MinIP / AvgIP of a CT-like volume, in random oblique directions with
    one-voxel and finer steps: block walking (the coarser grids included) and the warm start are exact."""
    voxels = noisy_ct(rng)
    handle = backend.prepare(voxels)
    centre = (np.asarray(voxels.shape) - 1) / 2
    for step in (1.0, 0.6):
        for d in [random_unit(rng) for _ in range(3)] + [np.array([0.2, 0.95, 0.25])]:
            d = d / np.linalg.norm(d)
            dk = d * step / np.max(np.abs(d))
            u = np.cross(d, random_unit(rng))
            u /= np.linalg.norm(u)
            du, dv = u * 1.1, np.cross(d, u) * 1.1
            nsamples = int(np.linalg.norm(voxels.shape) / np.linalg.norm(dk)) + 2
            origin = centre - 28 * du - 25 * dv - (nsamples - 1) / 2 * dk
            grid = RayGrid(origin, du, dv, dk, 57, 51, nsamples, float(np.linalg.norm(dk)))
            for reducer in ("max", "min", "mean"):
                got = backend.project(handle, grid, reducer)
                assert_projection_close(got, REFERENCE.project(voxels, grid, reducer), voxels)


def test_wide_images_match_reference(backend, rng):
    """Images several work-item strips wide (the numba kernels split rows into column strips):
    every strip, the last one partial, lands on its own pixels."""
    voxels = random_voxels(rng, (20, 24, 28), np.int16)
    handle = backend.prepare(voxels)
    grid = random_grid(rng, voxels.shape, 70, reach=0.0)
    du = grid.du * 0.15
    origin = grid.origin - 70 * du
    wide = RayGrid(origin, du, grid.dv, grid.dk, 157, 5, 70, grid.step_mm)
    for reducer in ("max", "min", "mean"):
        got = backend.project(handle, wide, reducer)
        assert_projection_close(got, REFERENCE.project(voxels, wide, reducer), voxels)
    lut = random_lut(rng, float(voxels.min()) - 50, float(voxels.max()) + 50)
    for shading in (None, random_shading(rng)):
        got = backend.composite(handle, wide, lut, shading)
        want = REFERENCE.composite(voxels, wide, lut, shading)
        np.testing.assert_allclose(got, want, rtol=0, atol=COMPOSITE_ATOL)


def test_project_grid_entirely_outside_is_nan(backend, rng):
    voxels = random_voxels(rng, (8, 9, 10), np.float32)
    handle = backend.prepare(voxels)
    grid = RayGrid(np.array([50.0, 50.0, 50.0]), np.eye(3)[2], np.eye(3)[1], np.eye(3)[0], 7, 5, 12)
    for reducer in ("max", "min", "mean"):
        assert np.all(np.isnan(backend.project(handle, grid, reducer)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_aligned_projection_equals_stored_voxels(backend, rng, dtype):
    """Axis-aligned, voxel-centred grids (including reversed axes and a partly outside image):
    MPR gives the stored voxels, projections give numpy's max/min/mean over the axis."""
    voxels = random_voxels(rng, (12, 15, 18), dtype)
    handle = backend.prepare(voxels)
    e = np.eye(3)
    mpr = RayGrid(np.array([5.0, -2.0, 0.0]), e[2], e[1], e[0], 18, 19, 1)
    want = np.full((19, 18), np.nan, dtype=np.float32)
    want[2:17] = voxels[5]
    np.testing.assert_array_equal(backend.project(handle, mpr, "max"), want)
    # Rays along -slice, image columns along -column: reversed axes.
    proj = RayGrid(np.array([11.0, 0.0, 17.0]), -e[2], e[1], -e[0], 18, 15, 12)
    for reducer, fn in (("max", np.max), ("min", np.min), ("mean", np.mean)):
        want = fn(voxels.astype(np.float64), axis=0)[:, ::-1]
        np.testing.assert_allclose(backend.project(handle, proj, reducer), want, rtol=1e-6, atol=1e-3)
        assert_projection_close(
            backend.project(handle, proj, reducer), REFERENCE.project(voxels, proj, reducer), voxels
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_aligned_grids_match_reference(backend, rng, dtype):
    """Voxel-centred grids along permuted, reversed axes, partly outside, thin and thick."""
    voxels = random_voxels(rng, (7, 11, 9), dtype)
    handle = backend.prepare(voxels)
    e = np.eye(3)
    for _ in range(12):
        axes = rng.permutation(3)
        signs = rng.choice([-1.0, 1.0], size=3)
        dv, du, dk = (signs[i] * e[axes[i]] for i in range(3))
        origin = rng.integers(-3, 13, size=3).astype(np.float64)
        width, height = (int(x) for x in rng.integers(1, 15, size=2))
        grid = RayGrid(origin, du, dv, dk, width, height, int(rng.choice([1, 4, 12])))
        for reducer in ("max", "min", "mean"):
            got = backend.project(handle, grid, reducer)
            assert_projection_close(got, REFERENCE.project(voxels, grid, reducer), voxels)


# ---------------------------------------------------------------------------- compositing


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("shaded", [False, True], ids=["unshaded", "shaded"])
def test_composite_matches_reference(backend, rng, shape, dtype, shaded):
    voxels = random_voxels(rng, shape, dtype)
    handle = backend.prepare(voxels)
    for _ in range(2):
        grid = random_grid(rng, shape, 60)
        lut = random_lut(rng, float(voxels.min()) - 50, float(voxels.max()) + 50)
        shading = random_shading(rng) if shaded else None
        got = backend.composite(handle, grid, lut, shading)
        want = REFERENCE.composite(voxels, grid, lut, shading)
        assert got.shape == (grid.height, grid.width, 4) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=COMPOSITE_ATOL)


def test_composite_opaque_lut_stops_early_and_matches(backend, rng):
    """An opaque LUT makes early ray termination decide the picture; empty-space skipping must
    still find the first non-empty sample of every ray."""
    voxels = random_voxels(rng, (30, 30, 30), np.float32)
    handle = backend.prepare(voxels)
    table = np.zeros((64, 4), dtype=np.float32)
    table[:, :3] = rng.uniform(0, 1, size=(64, 3))
    table[40:, 3] = 0.9  # only the brightest blobs are visible, and they are opaque
    lut = TransferLUT(table, float(voxels.min()), float(voxels.max()))
    grid = random_grid(rng, voxels.shape, 90, reach=0.0)
    for shading in (None, random_shading(rng)):
        got = backend.composite(handle, grid, lut, shading)
        np.testing.assert_allclose(
            got, REFERENCE.composite(voxels, grid, lut, shading), rtol=0, atol=COMPOSITE_ATOL
        )


@pytest.mark.parametrize("shininess", [0.0, 1.0, 20.0, 37.0])
def test_composite_whole_shininess_matches_reference(backend, rng, shininess):
    """Whole-number specular exponents (the default 20 among them) may take a faster power than
    pow(); the picture must not change."""
    voxels = random_voxels(rng, (20, 24, 28), np.float32)
    handle = backend.prepare(voxels)
    grid = random_grid(rng, voxels.shape, 60, reach=0.0)
    lut = random_lut(rng, float(voxels.min()) - 50, float(voxels.max()) + 50)
    base = random_shading(rng)
    shading = Shading(base.gradient_matrix, base.light, shininess=shininess)
    got = backend.composite(handle, grid, lut, shading)
    want = REFERENCE.composite(voxels, grid, lut, shading)
    np.testing.assert_allclose(got, want, rtol=0, atol=COMPOSITE_ATOL)


# ---------------------------------------------------------------------------- bad input


def test_bad_requests_are_refused(backend, rng):
    voxels = random_voxels(rng, (4, 5, 6), np.float32)
    handle = backend.prepare(voxels)
    grid = random_grid(rng, voxels.shape, 3)
    with pytest.raises(ValueError, match="reducer"):
        backend.project(handle, grid, "median")
    bad = RayGrid(grid.origin, grid.du, grid.dv, grid.dk, 0, 4, 3)
    with pytest.raises(ValueError, match="width"):
        backend.project(handle, bad, "max")
    with pytest.raises(ValueError, match="LUT"):
        backend.composite(handle, grid, TransferLUT(np.zeros((4, 3), np.float32), 0.0, 1.0), None)
    with pytest.raises(ValueError, match="hi > lo"):
        backend.composite(handle, grid, TransferLUT(np.zeros((4, 4), np.float32), 1.0, 1.0), None)
    with pytest.raises(ValueError, match="3-D"):
        backend.prepare(np.zeros((4, 4), np.float32))
