"""A volume made ready for rendering: the backend's resident copy of the voxels, and 2x and 4x
downsampled copies (built once) so previews can be rendered from fewer voxels.

A coarse voxel is the mean of the 2x2x2 fine voxels it covers, and sits at their mean position:
coarse index c is fine index 2c + 1/2 on every halved axis. The coarse affine says so, so world
positions stay right at every level. On an odd axis the last voxel is kept as it is (the mean of
itself and a copy); an axis of length 1 is not halved.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from voxcast.volume import Volume

from .rays import Backend
from .window import Window, auto_window

LEVELS = 3  # full, 2x, 4x


def _pair_mean(x: np.ndarray, axis: int) -> np.ndarray:
    """float32 means of neighbouring pairs along `axis`; an odd last element stays as it is."""
    n = x.shape[axis]
    if n == 1:
        return x.astype(np.float32, copy=False)
    head = [slice(None)] * x.ndim

    def part(sl: slice) -> np.ndarray:
        head[axis] = sl
        return x[tuple(head)]

    even = n - n % 2
    out = np.add(part(slice(0, even, 2)), part(slice(1, even, 2)), dtype=np.float32)
    out *= np.float32(0.5)
    if n % 2:
        out = np.concatenate([out, part(slice(n - 1, n)).astype(np.float32)], axis=axis)
    return out


def downsample(volume: Volume) -> Volume:
    """The 2x coarser copy of a volume (float32 means), with its affine."""
    coarse = volume.voxels
    for axis in range(3):  # the slice axis first: it shrinks the data most cheaply
        coarse = _pair_mean(coarse, axis)
    factors = np.array([2 if n > 1 else 1 for n in volume.shape])
    affine = volume.affine.copy()
    affine[:3, :3] = volume.affine[:3, :3] * factors[None, :]
    affine[:3, 3] = volume.index_to_world((factors - 1) / 2.0)
    return Volume(
        np.ascontiguousarray(coarse),
        affine,
        frame_of_reference_uid=volume.frame_of_reference_uid,
        modality=volume.modality,
        units=volume.units,
        series_uid=volume.series_uid,
    )


@dataclass(eq=False)
class PreparedVolume:
    """Levels 0 (the volume itself), 1 (2x) and 2 (4x), each with the backend's handle."""

    volume: Volume
    backend: Backend
    levels: list[Volume]
    handles: list
    _auto: Window | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def nbytes(self) -> int:
        """Host bytes held by all levels (the backend's copies come on top on a GPU)."""
        return int(sum(level.voxels.nbytes for level in self.levels))

    def level(self, level: int) -> tuple[Volume, object]:
        if not 0 <= level < len(self.levels):
            raise ValueError(f"level must be between 0 and {len(self.levels) - 1}, got {level}")
        return self.levels[level], self.handles[level]

    @property
    def auto_window(self) -> Window:
        """1st-99th percentile window, from the 2x copy (cheaper, and as good for a window)."""
        with self._lock:
            if self._auto is None:
                self._auto = auto_window(self.levels[min(1, len(self.levels) - 1)].voxels)
            return self._auto


def prepare_volume(
    volume: Volume, backend: Backend | str | None = None, levels: int = LEVELS
) -> PreparedVolume:
    """Build the multi-resolution copies and hand each level to the backend (default: VOXCAST_BACKEND)."""
    from .backends import get_backend

    if backend is None or isinstance(backend, str):
        backend = get_backend(backend)
    pyramid = [volume]
    while len(pyramid) < levels:
        pyramid.append(downsample(pyramid[-1]))
    handles = [backend.prepare(level.voxels) for level in pyramid]
    return PreparedVolume(volume=volume, backend=backend, levels=pyramid, handles=handles)
