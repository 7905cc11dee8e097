"""Numba-specific structures: the block min/max bounds that make skipping exact, the LUT occupancy
of empty-space skipping, the fixed-point positions of the interior loops, the dtype policy of
`prepare`, and on-disk caching of the kernels.
(Results against the numpy reference: test_backends_parity.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.render.engine.backends import numba_backend as nbk
from voxcast.render.engine.backends.numpy_backend import Backend as NumpyBackend
from voxcast.render.engine.backends.numpy_backend import trilinear
from voxcast.render.engine.rays import INSIDE_TOL, RayGrid, TransferLUT

BACKEND = nbk.Backend()


@pytest.mark.parametrize("shift", [nbk.BLOCK_SHIFT, *nbk.COARSE_SHIFTS])
@pytest.mark.parametrize("shape", [(1, 9, 17), (17, 16, 24), (25, 8, 9), (37, 33, 70)])
def test_block_bounds_hold_every_trilinear_sample_of_their_block(rng, shape, shift):
    """Skipping a block is exact only if every sample the walk assigns to it lies within its
    min/max - including samples a rounding error puts on the block's far face or in INSIDE_TOL.
    The same for the coarser grids projections walk (built from the finest one)."""
    voxels = rng.normal(0, 100, size=shape).astype(np.float32)
    handle = BACKEND.prepare(voxels)
    bmin, bmax = handle.bounds(shift)
    size = 1 << shift
    n = np.asarray(shape)
    assert bmax.shape == tuple(-(-n // size))
    points = rng.uniform(-INSIDE_TOL, 1, size=(20000, 3)) * (n - 1 + 2 * INSIDE_TOL)
    # Put a quarter of the points exactly on block faces, where rounding decides the block.
    face = rng.integers(0, 3, size=5000)
    points[:5000, :][np.arange(5000), face] = np.minimum(
        size * rng.integers(0, n[face] // size + 1), n[face] - 1
    )
    values = trilinear(voxels, points)
    clamped = np.clip(points, 0, n - 1)
    for nudge in (-1e-9, 0.0, 1e-9):  # the block on either side of a face
        block = np.minimum(
            np.clip(clamped + nudge, 0, n - 1).astype(int) >> shift,
            np.asarray(bmax.shape) - 1,
        )
        lo = bmin[block[:, 0], block[:, 1], block[:, 2]]
        hi = bmax[block[:, 0], block[:, 1], block[:, 2]]
        assert np.all(values >= lo - 1e-4) and np.all(values <= hi + 1e-4)


def test_coarse_bounds_are_the_bounds_of_their_voxels(rng):
    """A coarse block's min/max is exactly that of the voxels its apron covers (not just a bound)."""
    voxels = rng.normal(0, 100, size=(37, 33, 70)).astype(np.float32)
    handle = BACKEND.prepare(voxels)
    for shift in nbk.COARSE_SHIFTS:
        bmin, bmax = handle.bounds(shift)
        size = 1 << shift
        for b in np.ndindex(bmax.shape):
            box = tuple(slice(max(i * size - 1, 0), (i + 1) * size + 2) for i in b)
            assert bmin[b] == voxels[box].min() and bmax[b] == voxels[box].max()


def test_block_occupancy_follows_the_lut(rng):
    voxels = np.empty((32, 16, 16), dtype=np.float32)
    voxels[:16] = rng.uniform(0, 10, size=(16, 16, 16))
    voxels[16:] = rng.uniform(90, 100, size=(16, 16, 16))
    handle = BACKEND.prepare(voxels)
    table = np.zeros((101, 4), dtype=np.float32)
    table[95, 3] = 0.5  # only values around 95 are visible (the LUT maps 0..100 onto entries 0..100)
    alpha_count = np.cumsum(table[:, 3] > 0).astype(np.int64)
    occ = np.empty(handle.block_max.shape, dtype=np.uint8)
    nbk._block_occupancy(handle.block_min, handle.block_max, alpha_count, 0.0, 1.0, 100.0, occ)
    # Slices 0..9 (block 0 and its apron) hold only 0..10: empty. Block 1's apron reaches slice 16.
    assert not occ[0].any()
    assert occ[1:].all()


def test_fixed_point_sampler_matches_trilinear(rng):
    """The interior loops' sampler, at fixed-point positions, against the reference trilinear:
    exact on voxel centres (the fraction is copied, not computed), float64 rounding elsewhere."""
    voxels = rng.normal(0, 100, size=(9, 12, 17)).astype(np.float32)
    top = np.asarray(voxels.shape) - 2.0
    cells = nbk._cells(voxels)

    def sample(points):
        return np.array([nbk._trilinear_fixed(cells, *(nbk._fixed(c) for c in p)) for p in points])

    centres = rng.integers(0, top + 1, size=(300, 3)).astype(np.float64)
    np.testing.assert_array_equal(sample(centres), trilinear(voxels, centres))
    points = rng.uniform(0, 1, size=(3000, 3)) * top
    points[:300] = rng.integers(0, 2, size=(300, 3)) * top  # the interior's corners
    np.testing.assert_allclose(sample(points), trilinear(voxels, points), rtol=0, atol=1e-9)


def test_fixed_point_walks_stay_in_the_interior(rng):
    """Every position of a fixed-point walk lies in [0, top] whenever the exact ones do, sample i
    within i + 1 units (2^-40 voxel) of its exact position: random walks, and walks from one face
    to the other with steps of 0.5, 0.6 and 1.5 units, which rounding would carry past the face."""
    unit = 2.0**-nbk.FRAC_BITS
    top = 30
    walks = []
    for _ in range(2000):
        count = int(rng.integers(1, 2001))
        a, b = rng.uniform(0, top, size=2)
        walks.append((a, (b - a) / max(count - 1, 1), count))
    for count in (2, 17, 2000):
        for d in (0.6 * unit, -0.6 * unit, 0.5 * unit, -0.5 * unit, 1.5 * unit, -1.5 * unit):
            walks.append((top - d * (count - 1) if d > 0 else -d * (count - 1), d, count))
    for p, d, count in walks:
        start, step = nbk._fixed_axis(p, d, count, top << nbk.FRAC_BITS)
        i = np.arange(count)
        fixed = start + i * step  # int64
        assert fixed.min() >= 0 and fixed.max() <= top << nbk.FRAC_BITS, (p, d, count)
        assert np.all(np.abs(fixed * unit - (p + i * d)) <= (i + 1) * unit), (p, d, count)


@pytest.mark.parametrize("side", ["low", "high"])
@pytest.mark.parametrize("walk", ["plane", "slab", "rays", "sparse rays"])
def test_walks_grazing_an_interior_face_stay_on_the_voxels(rng, walk, side):
    """A walk whose step has a component of 0.6 fixed-point units towards a face of the interior
    (slice 0 or n - 2), starting just far enough in for every exact sample to stay inside: the step
    rounds to 1 unit, carrying the fixed-point positions up to 0.4 unit per step past the face,
    unless the walk's set-up keeps them on the voxels: the memory around them is NaN, so one read
    past them shows. Each walk: a thin MPR row and a slab (steps along the row), dense long rays (block
    walk), sparse long rays (tiled sweep)."""
    memory = np.full((12, 80, 12), np.nan, dtype=np.float32)
    voxels = memory[1:-1]  # contiguous: prepare keeps it, NaN on either side
    voxels[...] = rng.normal(0, 100, size=voxels.shape)
    nsamples, dk_y, along_row = {
        "plane": (1, 0.0, True),
        "slab": (12, 1.0, True),
        "rays": (400, 0.15, False),
        "sparse rays": (45, 1.6, False),
    }[walk]
    width = voxels.shape[2] - 1  # columns at x = 0.25 ... n - 1.75: off the voxel centres
    unit = 2.0**-nbk.FRAC_BITS
    z0 = 0.6 * unit * (width if along_row else nsamples)
    drift = -0.6 * unit
    if side == "high":
        z0, drift = voxels.shape[0] - 2.0 - z0, -drift
    du = np.array([drift if along_row else 0.0, 0.0, 1.0])
    dk = np.array([0.0 if along_row else drift, dk_y, 0.0])
    grid = RayGrid(np.array([z0, 2.0, 0.25]), du, np.array([0.0, 1.0, 0.0]), dk, width, 1, nsamples)
    handle = BACKEND.prepare(voxels)
    assert np.shares_memory(handle.voxels, memory)
    for reducer in ("max", "min", "mean"):
        want = NumpyBackend().project(voxels, grid, reducer)
        np.testing.assert_allclose(BACKEND.project(handle, grid, reducer), want, rtol=0, atol=2e-3)


@pytest.mark.parametrize("dtype", [np.uint16, np.float64, np.int32, bool])
def test_prepare_widens_other_numeric_dtypes_to_float32(rng, dtype):
    voxels = (rng.uniform(0, 50, size=(3, 4, 5))).astype(dtype)
    handle = BACKEND.prepare(voxels)
    assert handle.voxels.dtype == np.float32
    np.testing.assert_array_equal(handle.voxels, voxels.astype(np.float32))


def test_prepare_refuses_what_it_cannot_render():
    with pytest.raises(TypeError, match="numeric"):
        BACKEND.prepare(np.zeros((2, 2, 2), dtype="U3"))
    with pytest.raises(ValueError, match="empty"):
        BACKEND.prepare(np.zeros((0, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="3-D"):
        BACKEND.prepare(np.zeros((4, 4, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="fixed-point"):
        BACKEND.prepare(np.zeros((1, 1, 1 << (63 - nbk.FRAC_BITS)), dtype=np.int16))


def test_lut_with_no_visible_entry_renders_transparent(rng):
    voxels = rng.normal(0, 100, size=(10, 10, 10)).astype(np.float32)
    handle = BACKEND.prepare(voxels)
    from test_backends_parity import random_grid

    grid = random_grid(rng, voxels.shape, 30, reach=0.0)
    lut = TransferLUT(np.ones((8, 4), dtype=np.float32) * [1, 1, 1, 0], -100.0, 100.0)
    assert not BACKEND.composite(handle, grid, lut, None).any()


def test_kernels_are_cached_on_disk():
    kernels = [
        nbk._project_rays,
        nbk._sample_plane,
        nbk._composite_rays,
        nbk._block_minmax,
        nbk._block_occupancy,
    ]
    for kernel in kernels:
        assert kernel._cache.__class__.__name__ != "NullCache", kernel
