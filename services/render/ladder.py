"""The progressive ladder: which frames one view request yields, in order.

PREVIEW is rendered from the 2x downsampled copy at half the size (same field of view) and sent
as a quick JPEG; FULL is the full-size render as JPEG; LOSSLESS, when asked for, is that same full
render as PNG, so its pixels are exactly the engine's output.

Ray steps of the preview: a requested step_mm is scaled with the pixel size (x PREVIEW_SCALE); the
default (step_mm 0) is the engine's default for the downsampled copy, one coarse voxel, which is
already twice the full render's. Whole-volume rays (vr and projections without a slab) are the
expensive previews, so there the step is at least PREVIEW_RAY_STEP times that level's default:
a 256x256 preview of a whole 400x512x512 CT then samples a quarter as often as the full render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxcast.v1 import render_pb2

PREVIEW_LEVEL = 1
PREVIEW_SCALE = 2  # output size divided by, pixel size and ray step multiplied by
PREVIEW_RAY_STEP = 2.0  # whole-volume rays of the preview: at least this many of the level's default steps


@dataclass(frozen=True)
class Step:
    rung: int  # render_pb2.Rung
    name: str  # metric label
    level: int  # which multi-resolution copy
    scale: int  # 1 = full size; n = size / n, pixel size and ray step * n
    encoding: str  # "jpeg" or "png"
    quality: int = 0  # JPEG quality
    ray_step: float = 1.0  # whole-volume rays: step at least this many times the level's default
    reuse_previous: bool = False  # encode the previous step's picture instead of rendering again


PREVIEW = Step(
    render_pb2.PREVIEW, "preview", PREVIEW_LEVEL, PREVIEW_SCALE, "jpeg", quality=70, ray_step=PREVIEW_RAY_STEP
)
FULL = Step(render_pb2.FULL, "full", 0, 1, "jpeg", quality=90)
LOSSLESS = Step(render_pb2.LOSSLESS, "lossless", 0, 1, "png", reuse_previous=True)


def ladder(lossless: bool) -> list[Step]:
    return [PREVIEW, FULL, LOSSLESS] if lossless else [PREVIEW, FULL]


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    return max(1, math.ceil(width / scale)), max(1, math.ceil(height / scale))
