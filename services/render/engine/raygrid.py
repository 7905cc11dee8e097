"""From a view to sample points: the world-space ray grid of a plane, then the same points in a
volume's index space (rays.RayGrid), which is what the backends take.

Along the viewing direction w = right x down, sample k of pixel (v, u) lies at
    plane pixel (v, u) + t_k * w,   t_k = t_0 + k * step_mm.
- Thin MPR: one sample, t_0 = 0 (the plane itself).
- Slab of thickness T (MPR thick slab, or a projection limited to a slab): samples symmetric
  about the plane, t_k = (k - m) * step for k = 0 .. 2m, with m = floor(T / 2 / step).
- Whole volume (projections, VR): from the nearest to the farthest corner voxel centre, projected
  onto w: t_0 = t_min and as many steps as fit before t_max. An axis-aligned view with the step
  equal to the spacing then samples exactly the voxel centres.

Fusion samples the second volume at the SAME world points: `WorldGrid.in_index_space` of each volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voxcast.volume import Volume

from .rays import RayGrid
from .views import Plane

# Relative slack when counting steps, so that a span of exactly n steps gives n + 1 samples.
_STEP_EPS = 1e-6
# Bounds the work one request may ask for (4096 x 4096 x MAX_SAMPLES would never finish).
MAX_SAMPLES = 8192


@dataclass(frozen=True)
class WorldGrid:
    """Sample points in LPS mm: origin + v*dv + u*du + k*dk."""

    origin: np.ndarray
    du: np.ndarray
    dv: np.ndarray
    dk: np.ndarray
    width: int
    height: int
    nsamples: int
    step_mm: float

    def in_index_space(self, volume: Volume) -> RayGrid:
        inv = np.linalg.inv(volume.affine)[:3, :3]
        return RayGrid(
            origin=volume.world_to_index(self.origin),
            du=inv @ self.du,
            dv=inv @ self.dv,
            dk=inv @ self.dk,
            width=self.width,
            height=self.height,
            nsamples=self.nsamples,
            step_mm=self.step_mm,
        )


def voxel_step_mm(volume: Volume, direction) -> float:
    """The step along `direction` that advances at most one voxel on every index axis."""
    inv = np.linalg.inv(volume.affine)[:3, :3]
    return 1.0 / float(np.max(np.abs(inv @ np.asarray(direction, dtype=np.float64))))


def default_step_mm(volume: Volume, direction, mode: str) -> float:
    """MIP/MinIP/AvgIP and slabs: one voxel per step; VR: half the smallest spacing."""
    if mode == "vr":
        return float(volume.spacing.min()) / 2.0
    return voxel_step_mm(volume, direction)


def _samples(t0: float, t_end: float, step: float) -> tuple[float, int]:
    n = int(math.floor((t_end - t0) / step + _STEP_EPS)) + 1
    if n > MAX_SAMPLES:
        raise ValueError(f"step_mm {step:g} gives {n} samples per ray (at most {MAX_SAMPLES})")
    return t0, max(n, 1)


def world_grid(
    plane: Plane, volume: Volume | None, *, slab_mm: float = 0.0, step_mm: float = 0.0
) -> WorldGrid:
    """The sample points of a view.

    slab_mm == 0 and volume is None: the thin plane (MPR). slab_mm > 0: the slab around the plane.
    slab_mm == 0 with a volume: the whole volume along the viewing direction (projections, VR).
    step_mm must be > 0 whenever there is more than the plane.
    """
    w = plane.normal
    if slab_mm < 0 or not math.isfinite(slab_mm):
        raise ValueError(f"slab_mm must be >= 0, got {slab_mm}")
    if volume is None and slab_mm == 0:
        t0, n, step = 0.0, 1, 0.0
    else:
        if not step_mm > 0 or not math.isfinite(step_mm):
            raise ValueError(f"step_mm must be > 0, got {step_mm}")
        step = float(step_mm)
        if slab_mm > 0:
            m = int(math.floor(slab_mm / 2.0 / step + _STEP_EPS))
            t0, n = _samples(-m * step, m * step, step)
        else:
            t = (volume.corners() - plane.center) @ w
            t0, n = _samples(float(t.min()), float(t.max()), step)
    return WorldGrid(
        origin=plane.top_left + t0 * w,
        du=plane.pixel_mm * plane.right,
        dv=plane.pixel_mm * plane.down,
        dk=step * w,
        width=plane.width,
        height=plane.height,
        nsamples=n,
        step_mm=step,
    )
