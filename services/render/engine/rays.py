"""The contract between the view geometry and the backends' kernels.

A view (an MPR plane, a slab, a projection camera) becomes a RayGrid in the volume's continuous
index space: axes (slice, row, column), voxel centres at integers. Every backend (numpy, numba,
cupy) computes exactly the functions defined here, so they can be held to each other in tests.

Sampling
- Sample (v, u, k) sits at origin + v*dv + u*du + k*dk, for image row v < height, image column
  u < width and ray sample k < nsamples. k = 0 is nearest to the viewer; dk points away from it.
- A sample is inside when, on every axis a, -INSIDE_TOL <= p[a] <= n[a] - 1 + INSIDE_TOL
  (n = volume shape). Outside samples contribute nothing.
- Trilinear interpolation of an inside sample: clamp p to [0, n-1]; on an axis with n >= 2,
  i0 = min(floor(p), n - 2) and f = p - i0; on an axis with n == 1, i0 = i1 = 0 and f = 0.
  Values are computed in float (at least float32); voxels are int16 or float32.

project(reducer) -> float32 [height, width]
- "max" / "min": the extreme of the inside samples; "mean": their mean.
- NaN where a ray has no inside sample. MPR is project with nsamples == 1.

composite(lut, shading) -> float32 [height, width, 4]: premultiplied RGB and alpha, front to back
- lut: TransferLUT. For a value x: t = (x - lo) / (hi - lo) * (L - 1), clamped to [0, L-1];
  the entry is the linear interpolation of table[floor(t)] and table[min(floor(t)+1, L-1)].
  RGB in [0, 1]; alpha is already corrected for the ray step (the host does that).
- Shading (when given): the index-space gradient g[a] = (s(p + e_a) - s(p - e_a)) / 2, where s
  is the trilinear sampler with p + e_a clamped to the volume (no inside test); world gradient
  n = G @ g with G = shading.gradient_matrix (inverse transpose of the affine's 3x3).
  With light = shading.light (unit, world; the headlight: towards the viewer) and d = |n.l| / |n|:
  colour = rgb * (ambient + diffuse * d) + specular * d ** shininess, each channel clamped to 1;
  when |n| < 1e-6, colour = rgb * (ambient + diffuse).
- Compositing: C += (1 - A) * alpha * colour; A += (1 - A) * alpha; a ray stops once
  A >= ERT_ALPHA (early ray termination: part of the function, so all backends agree).
- Skipping samples whose lut alpha is 0 (empty-space skipping) does not change the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

INSIDE_TOL = 1e-3
ERT_ALPHA = 0.99

Reducer = Literal["max", "min", "mean"]


@dataclass(frozen=True)
class RayGrid:
    origin: np.ndarray  # (3,) float64, index space
    du: np.ndarray  # (3,) step between image columns
    dv: np.ndarray  # (3,) step between image rows
    dk: np.ndarray  # (3,) step between samples along a ray
    width: int
    height: int
    nsamples: int
    step_mm: float = 0.0  # |dk| in millimetres (0 for a thin MPR)


@dataclass(frozen=True)
class TransferLUT:
    table: np.ndarray  # (L, 4) float32: r, g, b in [0, 1], alpha corrected for the ray step
    lo: float
    hi: float


@dataclass(frozen=True)
class Shading:
    gradient_matrix: np.ndarray  # (3, 3) float64
    light: np.ndarray  # (3,) unit vector in world space, towards the viewer
    ambient: float = 0.3
    diffuse: float = 0.7
    specular: float = 0.3
    shininess: float = 20.0


class Backend(Protocol):
    """What every backend provides. `prepare` turns voxels into the backend's resident form
    (a device array, plus any acceleration structure); the others take that handle."""

    name: str

    def prepare(self, voxels: np.ndarray): ...

    def project(self, handle, grid: RayGrid, reducer: Reducer) -> np.ndarray: ...

    def composite(self, handle, grid: RayGrid, lut: TransferLUT, shading: Shading | None) -> np.ndarray: ...


def check_grid(grid: RayGrid) -> None:
    """Refuse a ray grid no kernel can run (shared by the compiled backends)."""
    if grid.width < 1 or grid.height < 1 or grid.nsamples < 1:
        raise ValueError(
            f"ray grid needs width, height and nsamples >= 1, got {grid.width}x{grid.height}x{grid.nsamples}"
        )
    for name in ("origin", "du", "dv", "dk"):
        vec = np.asarray(getattr(grid, name), dtype=np.float64)
        if vec.shape != (3,) or not np.all(np.isfinite(vec)):
            raise ValueError(f"ray grid {name} must be 3 finite numbers, got {vec!r}")


def check_lut(lut: TransferLUT) -> np.ndarray:
    """The LUT's table as contiguous float32 (L, 4), or a clear error."""
    table = np.ascontiguousarray(lut.table, dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 4 or table.shape[0] < 1:
        raise ValueError(f"LUT table must be (L, 4), got {table.shape}")
    if not lut.hi > lut.lo:
        raise ValueError(f"LUT range must have hi > lo, got [{lut.lo}, {lut.hi}]")
    return table
