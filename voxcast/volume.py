"""The Volume: voxels [slice, row, column] plus an index -> patient (LPS, mm) affine.

This is the one geometric type every service shares. world = affine @ [slice, row, column, 1].
Voxel values are in modality units (HU for CT, SUVbw or Bq/ml for PET, as `units` says).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def make_affine(origin, spacing, direction) -> np.ndarray:
    """Affine from origin (LPS mm), spacing [slice,row,col] and direction rows (index axes in LPS)."""
    direction = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction.T * np.asarray(spacing, dtype=np.float64)[None, :]
    affine[:3, 3] = np.asarray(origin, dtype=np.float64)
    return affine


@dataclass(eq=False)
class Volume:
    voxels: np.ndarray
    affine: np.ndarray
    frame_of_reference_uid: str = ""
    modality: str = ""
    units: str = ""
    series_uid: str = ""
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.voxels.ndim != 3:
            raise ValueError(f"voxels must be 3-D [slice,row,column], got shape {self.voxels.shape}")
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError("affine must be 4x4")
        if abs(np.linalg.det(self.affine[:3, :3])) < 1e-12:
            raise ValueError("affine is singular")

    @classmethod
    def from_geometry(cls, voxels, origin, spacing, direction, **kw) -> Volume:
        return cls(voxels, make_affine(origin, spacing, direction), **kw)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.voxels.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        """3x3, row k = LPS unit vector of index axis k (slice, row, column)."""
        return (self.affine[:3, :3] / self.spacing[None, :]).T

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3].copy()

    def index_to_world(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.float64)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, points) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        return points @ inv[:3, :3].T + inv[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """World position of the volume's centre (middle of the voxel-centre box)."""
        return self.index_to_world((np.asarray(self.shape) - 1) / 2.0)

    def corners(self) -> np.ndarray:
        """World positions of the 8 corner voxel centres."""
        n = np.asarray(self.shape) - 1
        idx = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], dtype=np.float64)
        return self.index_to_world(idx)

    def geometry_equal(self, other: Volume, atol: float = 1e-4) -> bool:
        return (
            self.shape == other.shape
            and self.frame_of_reference_uid == other.frame_of_reference_uid
            and np.allclose(self.affine, other.affine, atol=atol)
        )

    def geometry_dict(self) -> dict:
        """The `volume` object of `voxcast ls --json`."""
        return {
            "shape": list(self.shape),
            "spacing_mm": [round(float(s), 6) for s in self.spacing],
            "origin_lps": [round(float(v), 6) for v in self.origin],
            "direction": [[round(float(v), 9) for v in row] for row in self.direction],
        }
