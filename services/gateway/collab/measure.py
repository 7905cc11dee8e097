"""Measurements computed on the server from the volume in world coordinates, never from screen pixels.

A line is its length in patient space. An elliptical ROI lies on an MPR plane: the plane is sampled
on a regular grid (half the finest voxel spacing) inside the ellipse, each sample read from the
volume by trilinear interpolation, which gives the mean/max/min/std in the volume's units (HU,
SUVbw, ...) and the area of the ellipse.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import map_coordinates

from voxcast.volume import Volume

from .errors import InvalidCommand

# Caps the work of one ROI (a 30 cm ellipse on 0.5 mm voxels would be ~1.4 M samples otherwise).
MAX_SAMPLES = 250_000
PERPENDICULAR_TOLERANCE = 1e-3


def _point(p, name: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise InvalidCommand(f"{name} must be three finite coordinates (LPS mm)", field=name)
    return a


def measure_line(volume: Volume, start, end) -> dict:
    """Length in mm between two world points; says whether both ends lie inside the volume."""
    p0, p1 = _point(start, "start"), _point(end, "end")
    return {
        "length_mm": float(np.linalg.norm(p1 - p0)),
        "inside": bool(_inside(volume, np.stack([p0, p1])).all()),
    }


def _inside(volume: Volume, points: np.ndarray) -> np.ndarray:
    idx = volume.world_to_index(points)
    upper = np.asarray(volume.shape, dtype=np.float64) - 1
    eps = 1e-6
    return np.all((idx >= -eps) & (idx <= upper + eps), axis=-1)


def ellipse_samples(volume: Volume, center, axis_a, axis_b) -> tuple[np.ndarray, float]:
    """World positions of the sample grid inside the ellipse, and the grid step (mm)."""
    c = _point(center, "center")
    a, b = _point(axis_a, "axis_a"), _point(axis_b, "axis_b")
    ra, rb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if ra <= 0 or rb <= 0:
        raise InvalidCommand("ellipse semi-axes must have a length", field="axis_a" if ra <= 0 else "axis_b")
    u, v = a / ra, b / rb
    if abs(float(u @ v)) > PERPENDICULAR_TOLERANCE:
        raise InvalidCommand("ellipse semi-axes must be perpendicular", field="axis_b")
    step = float(volume.spacing.min()) / 2
    while (2 * ra / step + 1) * (2 * rb / step + 1) > MAX_SAMPLES:
        step *= 1.5
    # Grid centred on the ellipse centre, so a centred ROI samples symmetrically.
    ia = np.arange(-math.floor(ra / step), math.floor(ra / step) + 1) * step
    ib = np.arange(-math.floor(rb / step), math.floor(rb / step) + 1) * step
    ga, gb = np.meshgrid(ia, ib, indexing="ij")
    keep = (ga / ra) ** 2 + (gb / rb) ** 2 <= 1.0
    points = c + ga[keep][:, None] * u + gb[keep][:, None] * v
    return points, step


def measure_ellipse(volume: Volume, center, axis_a, axis_b) -> dict:
    """Statistics of the volume inside an ellipse on a plane (trilinear samples inside the volume)."""
    points, step = ellipse_samples(volume, center, axis_a, axis_b)
    inside = _inside(volume, points)
    if not inside.any():
        raise InvalidCommand("the ellipse lies outside the volume", field="center")
    idx = volume.world_to_index(points[inside])
    values = map_coordinates(
        np.asarray(volume.voxels, dtype=np.float64), idx.T, order=1, mode="nearest", prefilter=False
    )
    ra = float(np.linalg.norm(axis_a))
    rb = float(np.linalg.norm(axis_b))
    return {
        "mean": float(values.mean()),
        "max": float(values.max()),
        "min": float(values.min()),
        "std": float(values.std()),
        "area_mm2": math.pi * ra * rb,
        "samples": int(values.size),
        "sample_step_mm": step,
        "outside_fraction": float(1.0 - inside.mean()),
        "units": volume.units,
    }
