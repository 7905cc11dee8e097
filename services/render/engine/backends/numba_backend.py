"""Numba backend: the CPU fast path, parallel over image rows, compiled once and cached on disk.

It computes the functions defined in `voxcast.render.engine.rays` (the numpy backend is the oracle
in tests); everything here only makes them faster without changing the result:

- per-ray clipping: the k range where a ray is inside the volume box is solved analytically, widened
  by one sample at each end, and every visited sample still takes the contract's inside test;
- block min/max (blocks of BLOCK^3 voxels with an apron: one voxel below, two above, since a
  trilinear sample reads its upper neighbours and rounding may put a sample on a block's far face)
  built once in `prepare`, with the same bounds over blocks of 2B and 4B voxels derived from them.
  Rays walk the blocks with a 3-D DDA (one step per block, not per sample): a MIP over 2B blocks,
  a MinIP over 4B (see WALK_SHIFT). MIP skips a block whose max cannot beat the current max
  (MinIP: whose min cannot beat the current min) - exact, because a trilinear value lies between
  the values it mixes.
  Each ray first samples the depth where the previous pixel of its row found its extreme, so
  skipping starts with a good bound;
- compositing skips blocks whose value range maps to zero alpha in the request's LUT (jumping
  across wide empty regions by their chessboard distance to the nearest visible block), skips samples
  of zero alpha (no gradient is computed for them) and stops at ERT_ALPHA, all part of the contract;
- compositing walks a ray only across the box around the occupied blocks;
- when every sample sits on a voxel centre (axis-aligned view, pixel = voxel, integer centre) the
  projection is a strided reduction over the stored voxels: the memory pass numpy.max would make.

And only makes each sample cheaper: samples within [0, n - 2] on every axis (a row's or a ray's
interior span, solved analytically) skip the clamps and the inside test; voxels are read with
unsigned indices (no wraparound checks); the interior samples of projection rays run in a tight
loop of their own (no per-sample tests), reading the flattened voxels at one offset per sample,
their positions fixed point and advanced by adding the step (see FRAC_BITS), as are the positions
along an MPR or slab row's interior span; shading's six neighbour samples share their voxels in
the interior; whole-number specular exponents are raised by repeated squaring; long rays are
taken in column strips, row after row, so that neighbouring rays find their voxels in cache; long
rays whose samples are 1.5 voxels or more apart (the preview rung's) share no voxels from one sample
to the next, so they are swept in tiles of rays a few dozen voxels of depth at a time instead, with
no block skipping (on the preview of the large CT: MinIP and AvgIP a third faster, MIP the same).

Values are computed in float64 (no fast-math beyond contracting lerps into FMAs), positions in
float64 or in 2^-40 voxel fixed point, so results differ from the reference only by rounding (an
advanced fixed-point position drifts by at most 2e-9 voxel over a 2000-sample ray).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, parallel_chunksize, prange, types
from numba.extending import intrinsic
from scipy.ndimage import distance_transform_cdt
from voxcast.render.engine.rays import (
    ERT_ALPHA,
    INSIDE_TOL,
    RayGrid,
    Reducer,
    Shading,
    TransferLUT,
    check_grid,
    check_lut,
)

BLOCK_SHIFT = 3
BLOCK = 1 << BLOCK_SHIFT
# Projection rays walk coarser blocks than compositing: each block visit costs a DDA step and a
# test, and a MinIP's bounds seldom let a block go in noisy air (CT air around -1000 HU: every
# air block holds the darkest voxels, which the averaging trilinear samples seldom reach), so a
# MinIP walks the coarsest grid; a MIP's bright structures are compact, so it keeps finer blocks.
COARSE_SHIFTS = (BLOCK_SHIFT + 1, BLOCK_SHIFT + 2)
WALK_SHIFT = {"max": BLOCK_SHIFT + 1, "min": BLOCK_SHIFT + 2}
SUPPORTED_DTYPES = (np.dtype(np.int16), np.dtype(np.float32))
_REDUCERS = {"max": 0, "min": 1, "mean": 2}
# Image rows handed to a thread at a time: dynamic scheduling keeps both cores busy when one is
# preempted (render pods share their CPUs) at a negligible cost per chunk.
ROWS_PER_CHUNK = 4
# Column strip width of the long-ray kernels' work items (see _project_rays).
STRIP_COLS = 64
# Rays of at most this many samples (slabs) are swept depth by depth across a row (_project_slab);
# longer ones are walked ray by ray with block skipping (_project_rays), or, where consecutive
# samples of a ray share no voxels (a step of SPARSE_STEP voxels or more on some axis: the preview
# rung's rays), swept tile by tile (_project_tiles).
SLAB_SAMPLES = 4 * BLOCK
SPARSE_STEP = 1.5
# _project_tiles: a tile of TILE_COLS x TILE_ROWS rays advances TILE_DEPTH voxels at a time, so
# the voxels under the tile at that depth (about 300 KB on the preview rung) stay in L2 while
# every ray crossing them is sampled.
TILE_COLS = 128
TILE_ROWS = 8
TILE_DEPTH = 32.0
# A view whose steps and origin are within this of integers samples voxel centres exactly.
_ALIGNED_EPS = 1e-9


def is_available() -> bool:
    return True  # numba is a core dependency


def missing() -> str:
    return ""


@dataclass(frozen=True)
class NumbaVolume:
    """The backend's resident form: C-contiguous voxels plus the block min/max grids."""

    voxels: np.ndarray
    block_min: np.ndarray  # float32 [ceil(nz/B), ceil(ny/B), ceil(nx/B)], apron included
    block_max: np.ndarray
    # The same bounds over blocks of 2B and 4B voxels (COARSE_SHIFTS), for projection walks.
    coarse: tuple[tuple[np.ndarray, np.ndarray], ...] = ()

    def bounds(self, shift: int) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) grids over blocks of 2**shift voxels."""
        if shift == BLOCK_SHIFT:
            return self.block_min, self.block_max
        return self.coarse[shift - BLOCK_SHIFT - 1]

    def walk_bounds(self, reducer: Reducer) -> tuple[np.ndarray, np.ndarray, int]:
        """(min, max, shift) of the block grid a MIP / MinIP ray walks (see WALK_SHIFT)."""
        shift = WALK_SHIFT.get(reducer, BLOCK_SHIFT)
        return (*self.bounds(shift), shift)


# ---------------------------------------------------------------------------- sampling primitives


# Contraction into a fused multiply-add only (no other fast-math): one rounding instead of two,
# and fewer instructions on every sample.
@njit(cache=True, fastmath={"contract"})
def _lerp(a, b, f):
    return a + f * (b - a)


@njit(cache=True)
def _axis(p, n):
    """Contract's per-axis trilinear set-up: (i0, i1, f) for position p on an axis of n voxels
    (n == 1: i0 = i1 = 0, f = 0). Branch-free clamps."""
    p = min(max(p, 0.0), n - 1.0)
    i0 = min(int(p), max(n - 2, 0))  # p >= 0, so truncation is floor
    return i0, i0 + (1 if n > 1 else 0), p - i0


@njit(cache=True)
def _at(vol, z, y, x):
    """A voxel as float64, for indices known to be in range: unsigned indices spare numba's
    negative-index wraparound on every read of the hot loops."""
    return np.float64(vol[np.uint64(z), np.uint64(y), np.uint64(x)])


@njit(cache=True)
def _trilinear(vol, z, y, x):
    nz, ny, nx = vol.shape
    z0, z1, fz = _axis(z, nz)
    y0, y1, fy = _axis(y, ny)
    x0, x1, fx = _axis(x, nx)
    c00 = _lerp(_at(vol, z0, y0, x0), _at(vol, z0, y0, x1), fx)
    c01 = _lerp(_at(vol, z0, y1, x0), _at(vol, z0, y1, x1), fx)
    c10 = _lerp(_at(vol, z1, y0, x0), _at(vol, z1, y0, x1), fx)
    c11 = _lerp(_at(vol, z1, y1, x0), _at(vol, z1, y1, x1), fx)
    return _lerp(_lerp(c00, c01, fy), _lerp(c10, c11, fy), fz)


@njit(cache=True)
def _trilinear_interior(vol, z, y, x):
    """_trilinear where 0 <= p <= n - 2 on every axis (see _interior_span): no clamping, and
    i0 = floor(p) = int(p), so the same value for less work."""
    z0, y0, x0 = int(z), int(y), int(x)
    fz, fy, fx = z - z0, y - y0, x - x0
    c00 = _lerp(_at(vol, z0, y0, x0), _at(vol, z0, y0, x0 + 1), fx)
    c01 = _lerp(_at(vol, z0, y0 + 1, x0), _at(vol, z0, y0 + 1, x0 + 1), fx)
    c10 = _lerp(_at(vol, z0 + 1, y0, x0), _at(vol, z0 + 1, y0, x0 + 1), fx)
    c11 = _lerp(_at(vol, z0 + 1, y0 + 1, x0), _at(vol, z0 + 1, y0 + 1, x0 + 1), fx)
    return _lerp(_lerp(c00, c01, fy), _lerp(c10, c11, fy), fz)


# The interior loops (projection rays, MPR and slab rows) keep positions in fixed point: FRAC_BITS
# fractional bits in an int64. Stepping is then an integer add, the voxel index a shift and the
# fraction an exact bit copy into a double, where floating point needs a floor, two conversions and
# a subtraction per axis, on the same two ports as the interpolation's own arithmetic (it was a
# quarter of the time of a sample). 2^-40 voxel is far below float32 voxel precision; 23 integer
# bits remain.
FRAC_BITS = 40
_FIXED_ONE = float(1 << FRAC_BITS)
_FRAC_MASK = (1 << FRAC_BITS) - 1
_ONE_BITS = 0x3FF0000000000000  # IEEE 754 double 1.0: exponent 0, mantissa 0


@intrinsic
def _bits_as_float(typingctx, bits):
    """The int64's 64 bits read as a float64 (no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True)
def _fixed(p):
    return np.int64(round(p * _FIXED_ONE))


@njit(cache=True)
def _fixed_top(nz, ny, nx):
    """The largest fixed-point position of a cell's lower corner (n - 2) on each axis."""
    return (
        np.int64(max(nz - 2, 0)) << FRAC_BITS,
        np.int64(max(ny - 2, 0)) << FRAC_BITS,
        np.int64(max(nx - 2, 0)) << FRAC_BITS,
    )


@njit(cache=True)
def _fraction(p):
    """Fractional part of fixed-point p as a float64, exactly: its bits become the mantissa of a
    number in [1, 2)."""
    return _bits_as_float(((p & _FRAC_MASK) << (52 - FRAC_BITS)) | _ONE_BITS) - 1.0


@njit(cache=True)
def _cells(vol):
    """What _trilinear_fixed reads: the C-order flattened voxels, the row and plane strides (uint64)
    and the interior's fixed-point top corner."""
    nz, ny, nx = vol.shape
    return vol.reshape(-1), np.uint64(nx), np.uint64(ny * nx), _fixed_top(nz, ny, nx)


@njit(cache=True)
def _trilinear_fixed(cells, zf, yf, xf):
    """_trilinear_interior at a fixed-point position in the interior [0, top], reading the flattened
    voxels at one offset per sample (_fixed_walk keeps positions there)."""
    flat, row, plane, _ = cells
    fz, fy, fx = _fraction(zf), _fraction(yf), _fraction(xf)
    i = np.uint64(zf >> FRAC_BITS) * plane + np.uint64(yf >> FRAC_BITS) * row + np.uint64(xf >> FRAC_BITS)
    one = np.uint64(1)
    c00 = _lerp(np.float64(flat[i]), np.float64(flat[i + one]), fx)
    c01 = _lerp(np.float64(flat[i + row]), np.float64(flat[i + row + one]), fx)
    c10 = _lerp(np.float64(flat[i + plane]), np.float64(flat[i + plane + one]), fx)
    c11 = _lerp(np.float64(flat[i + plane + row]), np.float64(flat[i + plane + row + one]), fx)
    return _lerp(_lerp(c00, c01, fy), _lerp(c10, c11, fy), fz)


@njit(cache=True)
def _inside(z, y, x, nz, ny, nx):
    tol = INSIDE_TOL
    return -tol <= z <= nz - 1 + tol and -tol <= y <= ny - 1 + tol and -tol <= x <= nx - 1 + tol


@njit(cache=True)
def _clip_interval(c, d, inv, lo, hi, tmin, tmax):
    """Narrow [tmin, tmax] to the ray parameters where c + t*d lies in [lo, hi] (inv = 1/d,
    computed once per grid)."""
    if d == 0.0:
        if c < lo or c > hi:
            return 1.0, 0.0
        return tmin, tmax
    t1 = (lo - c) * inv
    t2 = (hi - c) * inv
    if t1 > t2:
        t1, t2 = t2, t1
    return max(tmin, t1), min(tmax, t2)


@njit(cache=True)
def _clip_axis(c, d, inv, n, tmin, tmax):
    """Narrow [tmin, tmax] to the ray parameters where c + t*d lies in the inside band of an axis."""
    return _clip_interval(c, d, inv, -INSIDE_TOL, n - 1 + INSIDE_TOL, tmin, tmax)


@njit(cache=True)
def _inverse(d):
    return 1.0 / d if d != 0.0 else 0.0


@njit(cache=True)
def _ray_range(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples):
    """First and last sample worth visiting (may be empty: k0 > k1), one sample of slack each side
    so that rounding never drops a sample the inside test would keep. Only those two slack samples
    can be outside: samples strictly between them are inside (up to rounding at the band's edge,
    INSIDE_TOL away from the voxels, where the reference's own rounding decides just the same)."""
    tmin, tmax = 0.0, nsamples - 1.0
    tmin, tmax = _clip_axis(cz, dz, iz, nz, tmin, tmax)
    tmin, tmax = _clip_axis(cy, dy, iy, ny, tmin, tmax)
    tmin, tmax = _clip_axis(cx, dx, ix, nx, tmin, tmax)
    if tmin > tmax:
        return 0, -1
    k0 = max(0, int(math.ceil(tmin)) - 1)
    k1 = min(nsamples - 1, int(math.floor(tmax)) + 1)
    return k0, k1


@njit(cache=True)
def _box_range(cz, cy, cx, dz, dy, dx, iz, iy, ix, box, k0, k1):
    """[k0, k1] narrowed to the samples within box = (lo, hi) per axis, with the same one sample
    of slack each side as _ray_range."""
    tmin, tmax = np.float64(k0), np.float64(k1)
    tmin, tmax = _clip_interval(cz, dz, iz, box[0, 0], box[0, 1], tmin, tmax)
    tmin, tmax = _clip_interval(cy, dy, iy, box[1, 0], box[1, 1], tmin, tmax)
    tmin, tmax = _clip_interval(cx, dx, ix, box[2, 0], box[2, 1], tmin, tmax)
    if tmin > tmax:
        return 0, -1
    return max(k0, int(math.ceil(tmin)) - 1), min(k1, int(math.floor(tmax)) + 1)


@njit(cache=True)
def _interior_span(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, count):
    """[a, b] of the samples c + t*d (t = 0 .. count - 1) lying within [0, n - 2] on every axis,
    one sample of margin each side for rounding: _trilinear_interior serves them, with no inside
    test. Empty (a > b) when an axis has a single voxel. (i* = 1/d*.)"""
    if nz < 2 or ny < 2 or nx < 2:
        return count, count - 1
    tmin, tmax = 0.0, count - 1.0
    tmin, tmax = _clip_interval(cz, dz, iz, 0.0, nz - 2.0, tmin, tmax)
    tmin, tmax = _clip_interval(cy, dy, iy, 0.0, ny - 2.0, tmin, tmax)
    tmin, tmax = _clip_interval(cx, dx, ix, 0.0, nx - 2.0, tmin, tmax)
    if tmin > tmax:
        return count, count - 1
    return int(math.ceil(tmin)) + 1, int(math.floor(tmax)) - 1


@njit(cache=True)
def _block_of(p, n, shift):
    if p <= 0.0:
        return 0
    if p >= n - 1.0:
        return (n - 1) >> shift
    return int(p) >> shift


@njit(cache=True)
def _dda_axis(c, d, inv, p, n, shift):
    """Walk set-up on one axis over blocks of 2**shift voxels: (block of p, ray parameter where
    the ray leaves that block, parameter span of one block, block step); inv = 1/d."""
    b = _block_of(p, n, shift)
    size = 1 << shift
    if d > 0.0:
        return b, ((b + 1) * size - c) * inv, size * inv, 1
    if d < 0.0:
        return b, (b * size - c) * inv, -size * inv, -1
    return b, np.inf, np.inf, 0


@njit(cache=True)
def _dda_advance(b, t, dt, step, nb):
    """Next block on one axis; past the grid's edge the walk stays in the edge block (samples there
    are outside, or within INSIDE_TOL and clamped onto the edge voxels)."""
    nxt = b + step
    if 0 <= nxt < nb:
        return nxt, t + dt
    return b, np.inf


@njit(cache=True)
def _dda_start(c, d, inv, k, n, shift):
    """A ray's 3-D walk over blocks of 2**shift voxels from its sample k (c, d, inv = 1/d and the
    volume shape n, per axis): (block, exit parameters, parameter spans, steps), a 3-tuple each."""
    z = _dda_axis(c[0], d[0], inv[0], c[0] + k * d[0], n[0], shift)
    y = _dda_axis(c[1], d[1], inv[1], c[1] + k * d[1], n[1], shift)
    x = _dda_axis(c[2], d[2], inv[2], c[2] + k * d[2], n[2], shift)
    return (z[0], y[0], x[0]), (z[1], y[1], x[1]), (z[2], y[2], x[2]), (z[3], y[3], x[3])


@njit(cache=True)
def _dda_next(block, t, dt, step, nb):
    """The walk's next block: across the face the ray leaves the current one by first."""
    bz, by, bx = block
    tz, ty, tx = t
    if tz <= ty and tz <= tx:
        bz, tz = _dda_advance(bz, tz, dt[0], step[0], nb[0])
    elif ty <= tx:
        by, ty = _dda_advance(by, ty, dt[1], step[1], nb[1])
    else:
        bx, tx = _dda_advance(bx, tx, dt[2], step[2], nb[2])
    return (bz, by, bx), (tz, ty, tx)


@njit(cache=True)
def _block_span_end(t, k1):
    """Last sample index before the ray leaves the current block (t: its exit parameters per axis;
    capped at k1)."""
    first = min(t[0], min(t[1], t[2]))
    if first >= k1:
        return k1
    return int(math.floor(first))


# ---------------------------------------------------------------------------- prepare


@njit(parallel=True, cache=True)
def _block_minmax(vol, bmin, bmax):
    nz, ny, nx = vol.shape
    nbz, nby, nbx = bmax.shape
    for bz in prange(nbz):
        z0 = max(bz * BLOCK - 1, 0)
        z1 = min((bz + 1) * BLOCK + 2, nz)
        for by in range(nby):
            y0 = max(by * BLOCK - 1, 0)
            y1 = min((by + 1) * BLOCK + 2, ny)
            for bx in range(nbx):
                x0 = max(bx * BLOCK - 1, 0)
                x1 = min((bx + 1) * BLOCK + 2, nx)
                lo = np.float32(vol[z0, y0, x0])
                hi = lo
                for z in range(z0, z1):
                    for y in range(y0, y1):
                        for x in range(x0, x1):
                            v = np.float32(vol[z, y, x])
                            lo = min(lo, v)
                            hi = max(hi, v)
                bmin[bz, by, bx] = lo
                bmax[bz, by, bx] = hi


def _coarsen(bmin: np.ndarray, bmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds over blocks twice as large: min / max over each 2x2x2 group of blocks (a trailing
    odd block stands alone). Exact, apron included: the aprons of blocks 2b and 2b + 1 (S voxels
    each) cover [2Sb - 1, 2S(b + 1) + 2), the apron of the coarse block b."""
    lo, hi = bmin, bmax
    for axis in range(3):
        n = lo.shape[axis]
        pad = [(0, 0)] * 3
        pad[axis] = (0, n % 2)
        lo = np.pad(lo, pad, mode="edge")
        hi = np.pad(hi, pad, mode="edge")
        shape = lo.shape[:axis] + (-(-n // 2), 2) + lo.shape[axis + 1 :]
        lo = lo.reshape(shape).min(axis=axis + 1)
        hi = hi.reshape(shape).max(axis=axis + 1)
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)


# ---------------------------------------------------------------------------- projections


@njit(cache=True)
def _edge_sample(vol, z, y, x, check):
    """A sample outside the ray's interior span: (inside, value). The inside test runs only where
    `check` says (the slack samples at a ray's ends, see _ray_range)."""
    nz, ny, nx = vol.shape
    if check and not _inside(z, y, x, nz, ny, nx):
        return False, 0.0
    return True, _trilinear(vol, z, y, x)


@njit(cache=True)
def _extreme_run(vol, cells, walk, cz, cy, cx, dz, dy, dx, k, kend, k0, k1, a, b, sign, best, best_k):
    """Samples k..kend of a MIP (sign 1) / MinIP (sign -1) ray: (best, best_k) after them. The run
    is split where it meets the interior span [a, b], so that the samples inside it (most of them)
    take a tight loop of the cheaper sampler with no per-sample tests (`walk`: _fixed_walk)."""
    ia = max(k, a)
    ib = min(kend, b)
    if ia > ib:  # no interior sample in this run
        ia = kend + 1
        ib = kend
    for kk in range(k, ia):
        ok, val = _edge_sample(vol, cz + kk * dz, cy + kk * dy, cx + kk * dx, kk == k0 or kk == k1)
        if ok and (best_k < 0 or sign * val > best):
            best, best_k = sign * val, kk
    if ia <= ib:
        z, y, x = _walk_at(walk, ia)
        _, _, _, sz, sy, sx, _ = walk
        for kk in range(ia, ib + 1):
            val = sign * _trilinear_fixed(cells, z, y, x)
            better = val > best  # selects, not a branch: in noisy air a MinIP improves at random
            best = val if better else best
            best_k = kk if better else best_k
            z += sz
            y += sy
            x += sx
    for kk in range(ib + 1, kend + 1):
        ok, val = _edge_sample(vol, cz + kk * dz, cy + kk * dy, cx + kk * dx, kk == k0 or kk == k1)
        if ok and (best_k < 0 or sign * val > best):
            best, best_k = sign * val, kk
    return best, best_k


@njit(cache=True)
def _fixed_walk(cells, cz, cy, cx, dz, dy, dx, a, b):
    """A ray's (or row's) interior span [a, b] in fixed point, set up once: (position of sample a,
    step, a), every position of the span in the interior [0, top] (_fixed_axis), so that
    _trilinear_fixed needs no clamps. Zeros where the span is empty (sample a may then lie beyond
    what fixed point holds)."""
    if a > b:
        return 0, 0, 0, 0, 0, 0, 0
    top = cells[3]
    count = b + 1 - a
    z, sz = _fixed_axis(cz + a * dz, dz, count, top[0])
    y, sy = _fixed_axis(cy + a * dy, dy, count, top[1])
    x, sx = _fixed_axis(cx + a * dx, dx, count, top[2])
    return z, y, x, sz, sy, sx, a


@njit(cache=True)
def _fixed_axis(p, d, count, top):
    """Start and step, fixed point, of the samples p + i * d (i < count) on one axis, all of which
    the interior span puts in [0, top] up to rounding. Both are rounded to nearest, then the start
    is clamped and, where rounding would carry the last sample past a face, the step shortened to
    land it on the face. Positions are monotone, so with both ends in [0, top] every sample is.
    Drift: at most 2^-40 voxel a step (2e-9 over 2000 samples), far inside the span's one-sample
    margin, and trilinear is continuous."""
    start = min(max(_fixed(p), 0), top)
    step = _fixed(d)
    if count > 1:
        end = start + (count - 1) * step
        if end < 0 or end > top:
            end = min(max(end, 0), top)
            if end >= start:
                step = (end - start) // (count - 1)
            else:
                step = -((start - end) // (count - 1))
    return start, step


@njit(cache=True)
def _walk_at(walk, k):
    """Fixed-point position of sample k of a walk (integer arithmetic only)."""
    z, y, x, sz, sy, sx, a = walk
    return z + (k - a) * sz, y + (k - a) * sy, x + (k - a) * sx


@njit(cache=True)
def _interior_sum(cells, walk, k, count):
    """Sum of `count` interior samples of a walk from sample k on, in the tight loop."""
    z, y, x = _walk_at(walk, k)
    _, _, _, sz, sy, sx, _ = walk
    total = 0.0
    for _ in range(count):
        total += _trilinear_fixed(cells, z, y, x)
        z += sz
        y += sy
        x += sx
    return total


@njit(cache=True)
def _interior_extreme(cells, walk, k, count, sign, best):
    """max(best, sign * sample) over `count` interior samples of a walk from sample k on."""
    z, y, x = _walk_at(walk, k)
    _, _, _, sz, sy, sx, _ = walk
    for _ in range(count):
        best = max(best, sign * _trilinear_fixed(cells, z, y, x))
        z += sz
        y += sy
        x += sx
    return best


@njit(cache=True)
def _edge_run(vol, cz, cy, cx, dz, dy, dx, ka, kb, k0, k1, sign, best, total, seen):
    """Samples ka..kb of a ray outside its interior span, tested where _ray_range says: the running
    (sign * extreme, sum, count) after them."""
    for k in range(ka, kb + 1):
        ok, val = _edge_sample(vol, cz + k * dz, cy + k * dy, cx + k * dx, k == k0 or k == k1)
        if ok:
            best = max(best, sign * val)
            total += val
            seen += 1
    return best, total, seen


@njit(cache=True)
def _mean_ray(vol, cells, walk, cz, cy, cx, dz, dy, dx, k0, k1, a, b):
    """(sum, count) of the inside samples k0..k1 of a ray, interior span [a, b] in a tight loop
    (`walk`: _fixed_walk of [a, b])."""
    ia = max(k0, a)
    ib = min(k1, b)
    if ia > ib:
        ia = k1 + 1
        ib = k1
    _, total, count = _edge_run(vol, cz, cy, cx, dz, dy, dx, k0, ia - 1, k0, k1, 1.0, 0.0, 0.0, 0)
    if ia <= ib:
        total += _interior_sum(cells, walk, ia, ib + 1 - ia)
    count += ib + 1 - ia
    _, total, count = _edge_run(vol, cz, cy, cx, dz, dy, dx, ib + 1, k1, k0, k1, 1.0, 0.0, total, count)
    return total, count


@njit(parallel=True, cache=True)
def _sample_plane(vol, origin, du, dv, width, height, out):
    """A thin MPR (one sample per ray, where max = min = mean): the sample or NaN, nothing else."""
    nz, ny, nx = vol.shape
    iz, iy, ix = _inverse(du[0]), _inverse(du[1]), _inverse(du[2])
    for v in prange(height):
        cells = _cells(vol)
        rz = origin[0] + v * dv[0]
        ry = origin[1] + v * dv[1]
        rx = origin[2] + v * dv[2]
        a, b = _interior_span(rz, ry, rx, du[0], du[1], du[2], iz, iy, ix, nz, ny, nx, width)
        walk = _fixed_walk(cells, rz, ry, rx, du[0], du[1], du[2], a, b)
        for u in range(width):
            if a <= u <= b:
                out[v, u] = _trilinear_fixed(cells, *_walk_at(walk, u))
                continue
            z = rz + u * du[0]
            y = ry + u * du[1]
            x = rx + u * du[2]
            if _inside(z, y, x, nz, ny, nx):
                out[v, u] = _trilinear(vol, z, y, x)
            else:
                out[v, u] = np.nan


@njit(parallel=True, cache=True)
def _project_slab(vol, origin, du, dv, dk, width, height, nsamples, mode, out):
    """Short rays (slabs): each image row is swept one sample depth at a time, left to right, so
    memory is read along the plane's rows like a thin MPR rather than hopping across slices ray
    by ray. Samples outside each row's interior span take the inside test; a ray with none is NaN."""
    nz, ny, nx = vol.shape
    iz, iy, ix = _inverse(du[0]), _inverse(du[1]), _inverse(du[2])
    for v in prange(height):
        cells = _cells(vol)
        acc = np.empty(width, dtype=np.float64)
        count = np.zeros(width, dtype=np.int64)
        acc[:] = -np.inf if mode == 0 else (np.inf if mode == 1 else 0.0)
        for k in range(nsamples):
            bz = origin[0] + v * dv[0] + k * dk[0]
            by = origin[1] + v * dv[1] + k * dk[1]
            bx = origin[2] + v * dv[2] + k * dk[2]
            a, b = _interior_span(bz, by, bx, du[0], du[1], du[2], iz, iy, ix, nz, ny, nx, width)
            walk = _fixed_walk(cells, bz, by, bx, du[0], du[1], du[2], a, b)
            for u in range(width):
                if a <= u <= b:
                    s = _trilinear_fixed(cells, *_walk_at(walk, u))
                else:
                    z = bz + u * du[0]
                    y = by + u * du[1]
                    x = bx + u * du[2]
                    if not _inside(z, y, x, nz, ny, nx):
                        continue
                    s = _trilinear(vol, z, y, x)
                if mode == 0:
                    acc[u] = max(acc[u], s)
                elif mode == 1:
                    acc[u] = min(acc[u], s)
                else:
                    acc[u] += s
                count[u] += 1
        for u in range(width):
            if count[u] == 0:
                out[v, u] = np.nan
            elif mode == 2:
                out[v, u] = acc[u] / count[u]
            else:
                out[v, u] = acc[u]


@njit(parallel=True, cache=True)
def _project_rays(vol, bmin, bmax, shift, origin, du, dv, dk, width, height, nsamples, mode, out):
    nz, ny, nx = vol.shape
    dz, dy, dx = dk[0], dk[1], dk[2]
    iz, iy, ix = _inverse(dz), _inverse(dy), _inverse(dx)
    sign = 1.0 if mode == 0 else -1.0  # MinIP is MIP of the negated values
    # Work items are rows of narrow column strips, taken strip by strip: neighbouring rays share
    # most of their voxels, and a strip's rows stay in cache from one row to the next.
    for item in prange(-(-width // STRIP_COLS) * height):
        # Tuples made here, not above: a parallel loop takes no tuples from outside.
        cells = _cells(vol)
        dk3, inv, shape = (dz, dy, dx), (iz, iy, ix), vol.shape
        v = item % height
        u_first = (item // height) * STRIP_COLS
        warm = -1  # depth of the previous pixel's extreme: a cheap first bound for skipping
        for u in range(u_first, min(u_first + STRIP_COLS, width)):
            cz = origin[0] + v * dv[0] + u * du[0]
            cy = origin[1] + v * dv[1] + u * du[1]
            cx = origin[2] + v * dv[2] + u * du[2]
            k0, k1 = _ray_range(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples)
            a, b = _interior_span(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples)
            walk = _fixed_walk(cells, cz, cy, cx, dz, dy, dx, a, b)
            if mode == 2:
                total, count = _mean_ray(vol, cells, walk, cz, cy, cx, dz, dy, dx, k0, k1, a, b)
                out[v, u] = total / count if count > 0 else np.nan
                continue
            best = -np.inf
            best_k = -1
            if k0 <= warm <= k1:
                best, best_k = _extreme_run(
                    vol, cells, walk, cz, cy, cx, dz, dy, dx, warm, warm,
                    k0, k1, a, b, sign, best, best_k,
                )  # fmt: skip
            if k1 - k0 < 4 * BLOCK:  # a short ray (a slab): block walking would not pay
                best, best_k = _extreme_run(
                    vol, cells, walk, cz, cy, cx, dz, dy, dx, k0, k1, k0, k1, a, b, sign, best, best_k
                )
            else:
                block, t, dt, step = _dda_start((cz, cy, cx), dk3, inv, k0, shape, shift)
                k = k0
                while k <= k1:
                    kend = _block_span_end(t, k1)
                    if kend >= k:
                        bound = bmax[block] if mode == 0 else -bmin[block]
                        # Skip a block none of whose samples can beat the current extreme.
                        if best_k < 0 or bound > best:
                            best, best_k = _extreme_run(
                                vol, cells, walk, cz, cy, cx, dz, dy, dx, k, kend,
                                k0, k1, a, b, sign, best, best_k,
                            )  # fmt: skip
                        k = kend + 1
                    block, t = _dda_next(block, t, dt, step, bmax.shape)
            if best_k >= 0:
                out[v, u] = sign * best
                warm = best_k
            else:
                out[v, u] = np.nan


@njit(parallel=True, cache=True)
def _project_tiles(vol, origin, du, dv, dk, width, height, nsamples, depth_samples, mode, out):
    """Long rays with sparse samples, no block skipping: each tile of rays is swept
    `depth_samples` samples at a time, ray after ray, so that the voxels it reads there come from
    memory once for all the tile's rays (walked ray by ray, each ray's samples fall on voxels of
    their own and neighbouring rays find them evicted). Same samples, same inside tests, the
    interior span in the tight loop; each depth chunk resumes a ray at its fixed-point position
    there (_walk_at), taken from the walk set up once per ray."""
    nz, ny, nx = vol.shape
    dz, dy, dx = dk[0], dk[1], dk[2]
    iz, iy, ix = _inverse(dz), _inverse(dy), _inverse(dx)
    sign = 1.0 if mode == 0 else -1.0  # MinIP is MIP of the negated values
    tiles_u = -(-width // TILE_COLS)
    n = TILE_COLS * TILE_ROWS
    for tile in prange(tiles_u * -(-height // TILE_ROWS)):
        cells = _cells(vol)  # here, not above: a parallel loop takes no tuples from outside
        u0 = (tile % tiles_u) * TILE_COLS
        v0 = (tile // tiles_u) * TILE_ROWS
        walks = np.zeros((n, 7), dtype=np.int64)  # each ray's _fixed_walk
        span = np.empty((n, 2), dtype=np.int64)  # interior samples [a, b] of each ray
        acc = np.empty(n)  # MIP/MinIP: sign * extreme so far; mean: sum
        count = np.zeros(n, dtype=np.int64)
        first = nsamples
        last = -1
        for r in range(n):
            u = u0 + r % TILE_COLS
            v = v0 + r // TILE_COLS
            span[r, 0], span[r, 1] = 1, 0
            if u >= width or v >= height:
                continue
            cz = origin[0] + v * dv[0] + u * du[0]
            cy = origin[1] + v * dv[1] + u * du[1]
            cx = origin[2] + v * dv[2] + u * du[2]
            k0, k1 = _ray_range(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples)
            a, b = _interior_span(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples)
            ia = max(k0, a)
            ib = min(k1, b)
            if ia > ib:
                ia = k1 + 1
                ib = k1
            # The samples outside the interior span (a few at each end), with their tests.
            best, total, seen = _edge_run(
                vol, cz, cy, cx, dz, dy, dx, k0, ia - 1, k0, k1, sign, -np.inf, 0.0, 0
            )
            best, total, seen = _edge_run(
                vol, cz, cy, cx, dz, dy, dx, ib + 1, k1, k0, k1, sign, best, total, seen
            )
            acc[r] = total if mode == 2 else best
            count[r] = seen + (ib + 1 - ia)
            span[r, 0], span[r, 1] = ia, ib
            walks[r, :] = _fixed_walk(cells, cz, cy, cx, dz, dy, dx, ia, ib)
            if ia <= ib:
                first = min(first, ia)
                last = max(last, ib)
        for chunk in range(first, last + 1, depth_samples):
            for r in range(n):
                ia = max(chunk, span[r, 0])
                ib = min(chunk + depth_samples - 1, span[r, 1])
                if ia > ib:
                    continue
                w = walks[r]
                walk = (w[0], w[1], w[2], w[3], w[4], w[5], w[6])
                if mode == 2:
                    acc[r] += _interior_sum(cells, walk, ia, ib + 1 - ia)
                else:
                    acc[r] = _interior_extreme(cells, walk, ia, ib + 1 - ia, sign, acc[r])
        for r in range(n):
            u = u0 + r % TILE_COLS
            v = v0 + r // TILE_COLS
            if u >= width or v >= height:
                continue
            if count[r] == 0:
                out[v, u] = np.nan
            elif mode == 2:
                out[v, u] = acc[r] / count[r]
            else:
                out[v, u] = sign * acc[r]


# ---------------------------------------------------------------------------- compositing


@njit(parallel=True, cache=True)
def _block_occupancy(bmin, bmax, alpha_count, lo, scale, last, occ):
    """occ[b] = 1 when some value in the block's [min, max] can get a non-zero alpha from the LUT.
    alpha_count[i] = number of table entries with alpha > 0 among entries 0..i (prefix count)."""
    nbz, nby, nbx = bmax.shape
    for bz in prange(nbz):
        for by in range(nby):
            for bx in range(nbx):
                t0 = (bmin[bz, by, bx] - lo) * scale
                t1 = (bmax[bz, by, bx] - lo) * scale
                if t0 > t1:
                    t0, t1 = t1, t0
                i0 = int(math.floor(min(max(t0, 0.0), last)))
                i1 = int(math.ceil(min(max(t1, 0.0), last)))
                before = alpha_count[i0 - 1] if i0 > 0 else 0
                occ[bz, by, bx] = 1 if alpha_count[i1] - before > 0 else 0


@njit(cache=True)
def _lut(table, x, lo, scale, last):
    t = (x - lo) * scale
    if t < 0.0:
        t = 0.0
    elif t > last:
        t = last
    i = int(t)
    j = min(i + 1, int(last))
    f = t - i
    r = table[i, 0] + f * (table[j, 0] - table[i, 0])
    g = table[i, 1] + f * (table[j, 1] - table[i, 1])
    b = table[i, 2] + f * (table[j, 2] - table[i, 2])
    a = table[i, 3] + f * (table[j, 3] - table[i, 3])
    return r, g, b, a


@njit(cache=True)
def _clamp_axis(p, n):
    if p < 0.0:
        return 0.0
    if p > n - 1.0:
        return n - 1.0
    return p


@njit(cache=True)
def _row_x(vol, z, y, x0, fx):
    """Trilinear's first step: voxels (z, y, x0) and (z, y, x0 + 1) mixed along the column axis."""
    return _lerp(_at(vol, z, y, x0), _at(vol, z, y, x0 + 1), fx)


@njit(cache=True)
def _gradient_interior(vol, z0, y0, x0, fz, fy, fx):
    """The contract's central differences where p - e_a and p + e_a need no clamping on any axis
    (1 <= i0 <= n - 3): the six neighbour samples share their voxels and their column-axis mixes,
    so 32 voxels are read instead of 48, and each value is mixed in the reference's order (column,
    row, slice) with the same fractions, up to the rounding of p +- 1."""
    z1, y1, x1 = z0 + 1, y0 + 1, x0 + 1
    # Column-axis mixes on the rows y0 - 1 .. y0 + 2 of slices z0, z0 + 1, and on rows y0, y0 + 1
    # of slices z0 - 1 and z0 + 2.
    a_m = _row_x(vol, z0, y0 - 1, x0, fx)
    a_0 = _row_x(vol, z0, y0, x0, fx)
    a_1 = _row_x(vol, z0, y1, x0, fx)
    a_2 = _row_x(vol, z0, y0 + 2, x0, fx)
    b_m = _row_x(vol, z1, y0 - 1, x0, fx)
    b_0 = _row_x(vol, z1, y0, x0, fx)
    b_1 = _row_x(vol, z1, y1, x0, fx)
    b_2 = _row_x(vol, z1, y0 + 2, x0, fx)
    pm = _lerp(_row_x(vol, z0 - 1, y0, x0, fx), _row_x(vol, z0 - 1, y1, x0, fx), fy)
    p2 = _lerp(_row_x(vol, z0 + 2, y0, x0, fx), _row_x(vol, z0 + 2, y1, x0, fx), fy)
    p0 = _lerp(a_0, a_1, fy)
    p1 = _lerp(b_0, b_1, fy)
    gz = 0.5 * (_lerp(p1, p2, fz) - _lerp(pm, p0, fz))
    gy = 0.5 * (
        _lerp(_lerp(a_1, a_2, fy), _lerp(b_1, b_2, fy), fz)
        - _lerp(_lerp(a_m, a_0, fy), _lerp(b_m, b_0, fy), fz)
    )
    # Column neighbours: the voxels at x0 - 1 and x0 + 2 of the four rows around p.
    xp = _lerp(
        _lerp(_lerp(_at(vol, z0, y0, x1), _at(vol, z0, y0, x0 + 2), fx),
              _lerp(_at(vol, z0, y1, x1), _at(vol, z0, y1, x0 + 2), fx), fy),
        _lerp(_lerp(_at(vol, z1, y0, x1), _at(vol, z1, y0, x0 + 2), fx),
              _lerp(_at(vol, z1, y1, x1), _at(vol, z1, y1, x0 + 2), fx), fy),
        fz,
    )  # fmt: skip
    xm = _lerp(
        _lerp(_lerp(_at(vol, z0, y0, x0 - 1), _at(vol, z0, y0, x0), fx),
              _lerp(_at(vol, z0, y1, x0 - 1), _at(vol, z0, y1, x0), fx), fy),
        _lerp(_lerp(_at(vol, z1, y0, x0 - 1), _at(vol, z1, y0, x0), fx),
              _lerp(_at(vol, z1, y1, x0 - 1), _at(vol, z1, y1, x0), fx), fy),
        fz,
    )  # fmt: skip
    return gz, gy, 0.5 * (xp - xm)


@njit(cache=True)
def _gradient(vol, z, y, x):
    """The contract's index-space gradient at p: central differences of the trilinear sampler,
    neighbours clamped to the volume."""
    nz, ny, nx = vol.shape
    z0, _, fz = _axis(z, nz)
    y0, _, fy = _axis(y, ny)
    x0, _, fx = _axis(x, nx)
    if 1 <= z0 <= nz - 3 and 1 <= y0 <= ny - 3 and 1 <= x0 <= nx - 3:
        return _gradient_interior(vol, z0, y0, x0, fz, fy, fx)
    gz = 0.5 * (
        _trilinear(vol, _clamp_axis(z + 1.0, nz), y, x) - _trilinear(vol, _clamp_axis(z - 1.0, nz), y, x)
    )
    gy = 0.5 * (
        _trilinear(vol, z, _clamp_axis(y + 1.0, ny), x) - _trilinear(vol, z, _clamp_axis(y - 1.0, ny), x)
    )
    gx = 0.5 * (
        _trilinear(vol, z, y, _clamp_axis(x + 1.0, nx)) - _trilinear(vol, z, y, _clamp_axis(x - 1.0, nx))
    )
    return gz, gy, gx


@njit(cache=True)
def _power(d, e, whole):
    """d ** e; by repeated squaring when e is the whole number `whole` (-1 otherwise), several
    times cheaper than pow and within a few ulps of it."""
    if whole < 0:
        return d**e
    r = 1.0
    while whole:
        if whole & 1:
            r *= d
        d *= d
        whole >>= 1
    return r


@njit(cache=True)
def _shade_factor(vol, z, y, x, gm, light, ambient, diffuse, specular, shininess, whole):
    """(multiplier of rgb, additive specular term) at a sample, per the contract's headlight model."""
    gz, gy, gx = _gradient(vol, z, y, x)
    n0 = gm[0, 0] * gz + gm[0, 1] * gy + gm[0, 2] * gx
    n1 = gm[1, 0] * gz + gm[1, 1] * gy + gm[1, 2] * gx
    n2 = gm[2, 0] * gz + gm[2, 1] * gy + gm[2, 2] * gx
    norm = math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
    if norm < 1e-6:
        return ambient + diffuse, 0.0
    d = abs(n0 * light[0] + n1 * light[1] + n2 * light[2]) / norm
    return ambient + diffuse * d, specular * _power(d, shininess, whole)


@njit(parallel=True, cache=True)
def _composite_rays(
    vol,
    occ,
    empty_reach,
    box,
    origin,
    du,
    dv,
    dk,
    width,
    height,
    nsamples,
    table,
    lo,
    scale,
    shade,
    gm,
    light,
    params,
    out,
):
    """empty_reach[b]: chessboard distance, in blocks, from block b to the nearest occupied block
    (0 for an occupied block). From the entry of a block at distance D the ray crosses only empty
    blocks for (D - 2) block widths along its largest axis step - one block of margin for rounding
    at faces - so it jumps there at once instead of walking block by block.
    box: the index-space box around the occupied blocks; a ray is walked only where it crosses it
    (samples outside it lie in empty blocks), while the contract's inside test still applies to the
    ends of its range in the volume (k0, k1)."""
    nz, ny, nx = vol.shape
    dz, dy, dx = dk[0], dk[1], dk[2]
    iz, iy, ix = _inverse(dz), _inverse(dy), _inverse(dx)
    largest = max(abs(dz), max(abs(dy), abs(dx)))
    block_samples = BLOCK / largest if largest > 0.0 else 0.0  # samples per block width, at least
    last = np.float64(table.shape[0] - 1)
    ambient, diffuse, specular, shininess = params[0], params[1], params[2], params[3]
    whole = int(shininess) if shininess == math.floor(shininess) and 0.0 <= shininess <= 256.0 else -1
    for item in prange(-(-width // STRIP_COLS) * height):  # as in _project_rays
        dk3, inv, shape = (dz, dy, dx), (iz, iy, ix), vol.shape  # here, as in _project_rays
        v = item % height
        u_first = (item // height) * STRIP_COLS
        for u in range(u_first, min(u_first + STRIP_COLS, width)):
            cz = origin[0] + v * dv[0] + u * du[0]
            cy = origin[1] + v * dv[1] + u * du[1]
            cx = origin[2] + v * dv[2] + u * du[2]
            k0, k1 = _ray_range(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples)
            kb0, kb1 = _box_range(cz, cy, cx, dz, dy, dx, iz, iy, ix, box, k0, k1)
            ia, ib = _interior_span(cz, cy, cx, dz, dy, dx, iz, iy, ix, nz, ny, nx, nsamples)
            cr = 0.0
            cg = 0.0
            cb = 0.0
            ca = 0.0
            block, t, dt, step = _dda_start((cz, cy, cx), dk3, inv, kb0, shape, BLOCK_SHIFT)
            k = kb0
            t_in = np.float64(kb0)  # where the ray entered the current block
            while k <= kb1 and ca < ERT_ALPHA:
                reach = empty_reach[block]
                if reach >= 3:
                    jump = int(math.floor(t_in + (reach - 2) * block_samples))
                    if jump > k:
                        k = jump
                        t_in = np.float64(k)
                        block, t, dt, step = _dda_start((cz, cy, cx), dk3, inv, k, shape, BLOCK_SHIFT)
                        continue
                kend = _block_span_end(t, kb1)
                # Empty-space skipping: a block whose value range has zero alpha adds nothing.
                if kend >= k and occ[block] != 0:
                    for kk in range(k, kend + 1):
                        z = cz + kk * dz
                        y = cy + kk * dy
                        x = cx + kk * dx
                        if (kk == k0 or kk == k1) and not _inside(z, y, x, nz, ny, nx):
                            continue
                        if ia <= kk <= ib:
                            val = _trilinear_interior(vol, z, y, x)
                        else:
                            val = _trilinear(vol, z, y, x)
                        r, g, b, a = _lut(table, val, lo, scale, last)
                        if a <= 0.0:
                            continue
                        if shade:
                            mul, spec = _shade_factor(
                                vol, z, y, x, gm, light, ambient, diffuse, specular, shininess, whole
                            )
                            r = min(r * mul + spec, 1.0)
                            g = min(g * mul + spec, 1.0)
                            b = min(b * mul + spec, 1.0)
                        w = (1.0 - ca) * a
                        cr += w * r
                        cg += w * g
                        cb += w * b
                        ca += w
                        if ca >= ERT_ALPHA:  # early ray termination
                            break
                if kend >= k:
                    k = kend + 1
                t_in = min(t[0], min(t[1], t[2]))
                block, t = _dda_next(block, t, dt, step, occ.shape)
            out[v, u, 0] = cr
            out[v, u, 1] = cg
            out[v, u, 2] = cb
            out[v, u, 3] = ca


# ---------------------------------------------------------------------------- the backend


def _vec(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(3))


def _occupied_box(occ: np.ndarray) -> np.ndarray:
    """(3, 2) index-space [lo, hi] per axis holding every position whose block is occupied (a
    position p belongs to block int(p) >> BLOCK_SHIFT), one voxel wider each side for rounding."""
    box = np.empty((3, 2), dtype=np.float64)
    for a in range(3):
        other = tuple(b for b in range(3) if b != a)
        used = np.flatnonzero(occ.any(axis=other))
        box[a] = used[0] * BLOCK - 1.0, (used[-1] + 1) * BLOCK + 1.0
    return box


def _aligned_steps(grid: RayGrid):
    """Integer (start, sv, su, sk) when every sample is a voxel centre on three distinct axes, else None."""
    vecs = [_vec(grid.origin), _vec(grid.dv), _vec(grid.du), _vec(grid.dk)]
    ints = [np.rint(x) for x in vecs]
    if any(np.max(np.abs(x - r)) > _ALIGNED_EPS for x, r in zip(vecs, ints, strict=True)):
        return None
    start, sv, su, sk = (r.astype(np.int64) for r in ints)
    if grid.nsamples == 1:
        sk = np.zeros(3, dtype=np.int64)
    axes = []
    for step in (sv, su, sk):
        nonzero = np.flatnonzero(step)
        if len(nonzero) == 0 and step is sk:
            continue
        if len(nonzero) != 1 or abs(step[nonzero[0]]) != 1:
            return None
        axes.append(int(nonzero[0]))
    if len(set(axes)) != len(axes):
        return None
    return start, sv, su, sk


def _index_range(start: int, step: int, count: int, n: int) -> tuple[int, int]:
    """[first, last] of i in [0, count) with 0 <= start + i*step <= n-1, for step in {-1, 1}."""
    if step > 0:
        return max(0, -start), min(count - 1, n - 1 - start)
    return max(0, start - (n - 1)), min(count - 1, start)


def _project_aligned(voxels: np.ndarray, aligned, grid: RayGrid, reducer: Reducer) -> np.ndarray:
    """A view whose samples are voxel centres: the projection is numpy's reduction over a strided
    view of the stored voxels (trilinear at a voxel centre is the voxel), one memory pass."""
    start, sv, su, sk = aligned
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    steps = {"v": sv, "u": su, "k": sk}
    lo = {"v": 0, "u": 0, "k": 0}
    hi = {"v": grid.height - 1, "u": grid.width - 1, "k": grid.nsamples - 1}
    index: list[slice | int] = [0, 0, 0]
    axis_of: dict[str, int] = {}
    for a in range(3):
        owner = next((n for n in ("v", "u", "k") if steps[n][a] != 0), None)
        s0 = int(start[a])
        if owner is None:  # the fixed axis of a thin slice
            if not 0 <= s0 < voxels.shape[a]:
                return out
            index[a] = s0
            continue
        first, last = _index_range(s0, int(steps[owner][a]), hi[owner] + 1, voxels.shape[a])
        lo[owner], hi[owner] = max(lo[owner], first), min(hi[owner], last)
        axis_of[owner] = a
    if any(lo[n] > hi[n] for n in lo):
        return out
    for owner, a in axis_of.items():
        step = int(steps[owner][a])
        i0, i1 = int(start[a]) + lo[owner] * step, int(start[a]) + hi[owner] * step
        index[a] = slice(i0, i1 + 1) if step > 0 else slice(i0, i1 - 1 if i1 > 0 else None, -1)
    view = voxels[tuple(index)]
    names = sorted(axis_of, key=axis_of.get)  # the view's axes, in volume order
    if "k" in names:
        # Reduce in the stored axis order (numpy then streams memory), then orient the image.
        view = {"max": np.max, "min": np.min, "mean": np.mean}[reducer](view, axis=names.index("k"))
        names.remove("k")
    image = np.transpose(view, [names.index("v"), names.index("u")])
    out[lo["v"] : hi["v"] + 1, lo["u"] : hi["u"] + 1] = image
    return out


class Backend:
    name = "numba"

    def prepare(self, voxels: np.ndarray) -> NumbaVolume:
        voxels = np.asarray(voxels)
        if voxels.ndim != 3:
            raise ValueError(f"voxels must be 3-D [slice, row, column], got shape {voxels.shape}")
        if voxels.dtype.kind not in "biuf":
            raise TypeError(f"voxels must be numeric, got {voxels.dtype}")
        if voxels.dtype not in SUPPORTED_DTYPES:
            # Kernels are compiled for the two dtypes volumes arrive in; others are widened once here.
            voxels = voxels.astype(np.float32)
        if voxels.size == 0:
            raise ValueError("voxels are empty")
        if max(voxels.shape) >= 1 << (63 - FRAC_BITS):
            raise ValueError(f"voxels {voxels.shape}: an axis this long overflows fixed-point positions")
        voxels = np.ascontiguousarray(voxels)
        nb = tuple(-(-n // BLOCK) for n in voxels.shape)
        bmin = np.empty(nb, dtype=np.float32)
        bmax = np.empty(nb, dtype=np.float32)
        _block_minmax(voxels, bmin, bmax)
        coarse = []
        for _ in COARSE_SHIFTS:
            coarse.append(_coarsen(*(coarse[-1] if coarse else (bmin, bmax))))
        return NumbaVolume(voxels, bmin, bmax, tuple(coarse))

    def project(self, handle: NumbaVolume, grid: RayGrid, reducer: Reducer) -> np.ndarray:
        if reducer not in _REDUCERS:
            raise ValueError(f"unknown reducer {reducer!r}; known: {', '.join(_REDUCERS)}")
        check_grid(grid)
        aligned = _aligned_steps(grid)
        if aligned is not None:
            return _project_aligned(handle.voxels, aligned, grid, reducer)
        out = np.empty((grid.height, grid.width), dtype=np.float32)
        origin, du, dv = _vec(grid.origin), _vec(grid.du), _vec(grid.dv)
        with parallel_chunksize(ROWS_PER_CHUNK):
            if grid.nsamples == 1:
                _sample_plane(handle.voxels, origin, du, dv, grid.width, grid.height, out)
            elif grid.nsamples <= SLAB_SAMPLES:
                _project_slab(
                    handle.voxels, origin, du, dv, _vec(grid.dk), grid.width, grid.height, grid.nsamples,
                    _REDUCERS[reducer], out,
                )  # fmt: skip
            elif (stride := float(np.max(np.abs(grid.dk)))) >= SPARSE_STEP:
                depth = max(1, int(TILE_DEPTH / stride))
                with parallel_chunksize(1):
                    _project_tiles(
                        handle.voxels, origin, du, dv, _vec(grid.dk), grid.width, grid.height, grid.nsamples,
                        depth, _REDUCERS[reducer], out,
                    )  # fmt: skip
            else:
                _project_rays(
                    handle.voxels, *handle.walk_bounds(reducer), origin, du, dv, _vec(grid.dk),
                    grid.width, grid.height, grid.nsamples, _REDUCERS[reducer], out,
                )  # fmt: skip
        return out

    def composite(
        self, handle: NumbaVolume, grid: RayGrid, lut: TransferLUT, shading: Shading | None
    ) -> np.ndarray:
        check_grid(grid)
        table = check_lut(lut)
        last = table.shape[0] - 1
        scale = last / (float(lut.hi) - float(lut.lo))
        alpha_count = np.cumsum(table[:, 3] > 0).astype(np.int64)
        occ = np.empty(handle.block_max.shape, dtype=np.uint8)
        _block_occupancy(
            handle.block_min, handle.block_max, alpha_count, float(lut.lo), scale, float(last), occ
        )
        out = np.zeros((grid.height, grid.width, 4), dtype=np.float32)
        if not occ.any():
            return out  # nothing in the volume is visible under this LUT
        empty_reach = distance_transform_cdt(occ == 0, metric="chessboard").astype(np.int32)
        box = _occupied_box(occ)
        if shading is None:
            gm = np.eye(3)
            light = np.zeros(3)
            params = np.zeros(4)
        else:
            gm = np.ascontiguousarray(np.asarray(shading.gradient_matrix, dtype=np.float64).reshape(3, 3))
            light = _vec(shading.light)
            params = np.array(
                [shading.ambient, shading.diffuse, shading.specular, shading.shininess], dtype=np.float64
            )
        with parallel_chunksize(ROWS_PER_CHUNK):
            _composite_rays(
                handle.voxels, occ, empty_reach, box, _vec(grid.origin), _vec(grid.du), _vec(grid.dv),
                _vec(grid.dk), grid.width, grid.height, grid.nsamples, table, float(lut.lo), scale,
                shading is not None, gm, light, params, out,
            )  # fmt: skip
        return out
