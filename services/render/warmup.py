"""Kernel warm-up: render a tiny synthetic volume through every mode once, so that a fresh process
compiles (numba, CUDA) or loads its kernels before the first viewer waits on them.

The numba backend compiles its kernels on first use (tens of seconds cold, about a second from its
on-disk cache) and a kernel is compiled per voxel type, so every view below is rendered from an
int16 and a float32 volume. The views are oblique, so the general sampling kernels run rather than
a shortcut for axis-aligned views, and the volume is deep enough that whole-volume rays take the
long-ray path while a thin slab takes the short one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from voxcast.volume import Volume

from . import engine

log = logging.getLogger(__name__)

SIZE = 48  # voxels per axis: whole-volume rays longer than a slab's, still a few milliseconds
IMAGE = 24  # pixels per side of each warm-up picture
DTYPES = (np.int16, np.float32)
# Tilted off every axis: no axis-aligned shortcut.
NORMAL = np.array([0.3, 0.9, 0.3]) / np.linalg.norm([0.3, 0.9, 0.3])
SLAB_MM = 6.0


@dataclass(frozen=True)
class WarmupView:
    name: str
    mode: str
    slab_mm: float = 0.0
    slab_mode: str = "mip"
    shading: bool = False


VIEWS = (
    WarmupView("mpr", "mpr"),
    WarmupView("slab-mip", "mpr", SLAB_MM, "mip"),
    WarmupView("slab-minip", "mpr", SLAB_MM, "minip"),
    WarmupView("slab-mean", "mpr", SLAB_MM, "mean"),
    WarmupView("mip", "mip"),
    WarmupView("minip", "minip"),
    WarmupView("avgip", "avgip"),
    WarmupView("vr", "vr"),
    WarmupView("vr-shaded", "vr", shading=True),
)


@dataclass(frozen=True)
class WarmupReport:
    seconds: float
    rendered: tuple[tuple[str, str], ...]  # (view name, voxel dtype) in render order


def synthetic_volume(dtype) -> Volume:
    """A CT-like cube: air around a soft-tissue ball holding a bone core, so every mode (bone
    transfer function included) has something visible to sample."""
    idx = np.indices((SIZE, SIZE, SIZE), dtype=np.float32)
    r = np.sqrt(sum((axis - (SIZE - 1) / 2) ** 2 for axis in idx))
    voxels = np.full((SIZE, SIZE, SIZE), -1000.0, dtype=np.float32)
    voxels[r < SIZE * 0.4] = 40.0
    voxels[r < SIZE * 0.15] = 900.0
    return Volume.from_geometry(
        voxels.astype(dtype), origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0), direction=np.eye(3),
        modality="CT", units="HU",
    )  # fmt: skip


def _request(view: WarmupView, volume: Volume) -> engine.ViewRequest:
    plane = engine.oblique(NORMAL, volume, size=(IMAGE, IMAGE))
    if view.mode == "mpr":
        return engine.ViewRequest(
            "mpr", plane=plane, slab_mm=view.slab_mm, slab_mode=view.slab_mode, shading=view.shading
        )
    return engine.ViewRequest(view.mode, camera=engine.Camera.from_plane(plane), shading=view.shading)


def warm_up(backend) -> WarmupReport:
    """Render every warm-up view from each voxel type on `backend`; returns what and how long."""
    started = time.perf_counter()
    rendered = []
    for dtype in DTYPES:
        volume = synthetic_volume(dtype)
        prepared = engine.prepare_volume(volume, backend, levels=1)
        for view in VIEWS:
            engine.render(prepared, _request(view, volume))
            rendered.append((view.name, np.dtype(dtype).name))
    return WarmupReport(time.perf_counter() - started, tuple(rendered))
