"""Volumes with known geometry for the render engine tests, built directly in memory."""

from __future__ import annotations

import numpy as np

from voxcast.volume import Volume

# Direction rows (slice, row, column) of a volume stored the usual way: slices along +Z (feet to
# head), rows along +Y (anterior to posterior), columns along +X (patient right to left).
AXIAL_DIRECTION = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def make_volume(
    voxels, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=AXIAL_DIRECTION, **kw
) -> Volume:
    kw.setdefault("modality", "CT")
    kw.setdefault("frame_of_reference_uid", "1.2.3.4")
    return Volume.from_geometry(np.asarray(voxels), origin, spacing, direction, **kw)


def random_oblique_volume(rng: np.random.Generator, shape=(24, 28, 32), dtype=np.float32) -> Volume:
    """Smooth-ish random voxels on a randomly rotated, anisotropic, offset grid."""
    voxels = rng.normal(0, 100, size=shape)
    if dtype == np.int16:
        voxels = np.round(voxels)
    direction = rotation(rng.normal(size=3), rng.uniform(10, 170)) @ AXIAL_DIRECTION.T
    return make_volume(
        voxels.astype(dtype),
        spacing=rng.uniform(0.6, 2.5, size=3),
        origin=rng.uniform(-50, 50, size=3),
        direction=direction.T,
    )
