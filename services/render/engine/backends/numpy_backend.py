"""The reference backend: rays.py written out in NumPy, vectorised over pixels, one ray sample
at a time. It is the oracle the other backends are tested against, so it favours the plain
reading of the contract (float64 throughout) over speed.
"""

from __future__ import annotations

import numpy as np

from ..rays import ERT_ALPHA, INSIDE_TOL, RayGrid, Reducer, Shading, TransferLUT

# Pixels handled at once: bounds the temporaries (about 30 float64 arrays of this length).
CHUNK_PIXELS = 1 << 16


def is_available() -> bool:
    return True


def missing() -> str:
    return ""


def _points(grid: RayGrid, rows: slice, k: int) -> np.ndarray:
    """Index-space positions (P, 3) of sample k for the pixels of image rows `rows`."""
    v = np.arange(rows.start, rows.stop, dtype=np.float64)
    u = np.arange(grid.width, dtype=np.float64)
    base = grid.origin + k * np.asarray(grid.dk)
    pts = base + v[:, None, None] * grid.dv + u[None, :, None] * grid.du
    return pts.reshape(-1, 3)


def inside(shape, p: np.ndarray) -> np.ndarray:
    upper = np.asarray(shape, dtype=np.float64) - 1 + INSIDE_TOL
    return np.all((p >= -INSIDE_TOL) & (p <= upper), axis=1)


def trilinear(vox: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Trilinear interpolation at index positions p (P, 3), clamped to the volume."""
    n = np.asarray(vox.shape)
    p = np.clip(p, 0, n - 1)
    i0 = np.minimum(np.floor(p).astype(np.intp), np.maximum(n - 2, 0))
    f = np.where(n >= 2, p - i0, 0.0)
    # Gather from the C-order flattened voxels; on an axis of length 1 the "next" voxel is i0 itself.
    flat = np.ascontiguousarray(vox).reshape(-1)
    strides = np.array([n[1] * n[2], n[2], 1])
    base = i0 @ strides
    step = np.where(n >= 2, strides, 0)

    def at(da: int, db: int, dc: int) -> np.ndarray:
        return flat[base + (da * step[0] + db * step[1] + dc * step[2])].astype(np.float64)

    fa, fb, fc = f[:, 0], f[:, 1], f[:, 2]

    def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
        return a + t * (b - a)

    # Along the column axis, then the row axis, then the slice axis.
    c0 = lerp(lerp(at(0, 0, 0), at(0, 0, 1), fc), lerp(at(0, 1, 0), at(0, 1, 1), fc), fb)
    c1 = lerp(lerp(at(1, 0, 0), at(1, 0, 1), fc), lerp(at(1, 1, 0), at(1, 1, 1), fc), fb)
    return lerp(c0, c1, fa)


def lut_lookup(lut: TransferLUT, x: np.ndarray) -> np.ndarray:
    """(P, 4) rgba of values x by linear interpolation in the table."""
    table = np.asarray(lut.table, dtype=np.float64)
    last = len(table) - 1
    t = np.clip((x - lut.lo) / (lut.hi - lut.lo) * last, 0, last)
    i = np.floor(t).astype(np.intp)
    f = (t - i)[:, None]
    return table[i] * (1 - f) + table[np.minimum(i + 1, last)] * f


def gradient(vox: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Index-space central differences (P, 3), neighbours clamped to the volume."""
    g = np.empty_like(p)
    for a in range(3):
        e = np.zeros(3)
        e[a] = 1.0
        g[:, a] = (trilinear(vox, p + e) - trilinear(vox, p - e)) / 2.0
    return g


def shade(rgb: np.ndarray, vox: np.ndarray, p: np.ndarray, shading: Shading) -> np.ndarray:
    n = gradient(vox, p) @ np.asarray(shading.gradient_matrix, dtype=np.float64).T
    norm = np.linalg.norm(n, axis=1)
    flat = norm < 1e-6
    d = np.abs(n @ np.asarray(shading.light, dtype=np.float64)) / np.where(flat, 1.0, norm)
    lit = (
        rgb * (shading.ambient + shading.diffuse * d[:, None])
        + shading.specular * d[:, None] ** shading.shininess
    )
    lit = np.minimum(lit, 1.0)
    return np.where(flat[:, None], rgb * (shading.ambient + shading.diffuse), lit)


def _row_chunks(grid: RayGrid):
    rows = max(1, CHUNK_PIXELS // grid.width)
    for start in range(0, grid.height, rows):
        yield slice(start, min(start + rows, grid.height))


class Backend:
    name = "numpy"

    def prepare(self, voxels: np.ndarray) -> np.ndarray:
        if voxels.dtype not in (np.int16, np.float32):
            voxels = voxels.astype(np.float32)
        return np.ascontiguousarray(voxels)

    def project(self, handle: np.ndarray, grid: RayGrid, reducer: Reducer) -> np.ndarray:
        if reducer not in ("max", "min", "mean"):
            raise ValueError(f"unknown reducer {reducer!r}")
        out = np.empty((grid.height, grid.width), dtype=np.float32)
        for rows in _row_chunks(grid):
            npix = (rows.stop - rows.start) * grid.width
            count = np.zeros(npix)
            acc = np.full(npix, {"max": -np.inf, "min": np.inf, "mean": 0.0}[reducer])
            for k in range(grid.nsamples):
                p = _points(grid, rows, k)
                hit = inside(handle.shape, p)
                if not hit.any():
                    continue
                x = trilinear(handle, p[hit])
                if reducer == "max":
                    acc[hit] = np.maximum(acc[hit], x)
                elif reducer == "min":
                    acc[hit] = np.minimum(acc[hit], x)
                else:
                    acc[hit] += x
                count[hit] += 1
            if reducer == "mean":
                acc = acc / np.maximum(count, 1)
            acc[count == 0] = np.nan
            out[rows] = acc.reshape(-1, grid.width)
        return out

    def composite(
        self, handle: np.ndarray, grid: RayGrid, lut: TransferLUT, shading: Shading | None
    ) -> np.ndarray:
        out = np.empty((grid.height, grid.width, 4), dtype=np.float32)
        for rows in _row_chunks(grid):
            npix = (rows.stop - rows.start) * grid.width
            colour = np.zeros((npix, 3))
            alpha = np.zeros(npix)
            for k in range(grid.nsamples):
                active = alpha < ERT_ALPHA  # early ray termination
                if not active.any():
                    break
                p = _points(grid, rows, k)
                live = active & inside(handle.shape, p)
                idx = np.flatnonzero(live)
                if idx.size == 0:
                    continue
                rgba = lut_lookup(lut, trilinear(handle, p[idx]))
                seen = rgba[:, 3] > 0  # empty-space skipping: transparent samples add nothing
                idx, rgba = idx[seen], rgba[seen]
                if idx.size == 0:
                    continue
                rgb = rgba[:, :3]
                if shading is not None:
                    rgb = shade(rgb, handle, p[idx], shading)
                weight = (1.0 - alpha[idx]) * rgba[:, 3]
                colour[idx] += weight[:, None] * rgb
                alpha[idx] += weight
            out[rows] = np.concatenate([colour, alpha[:, None]], axis=1).reshape(-1, grid.width, 4)
        return out
