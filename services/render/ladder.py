"""The progressive ladder: which frames one view request yields, in order.

PREVIEW is rendered from the 2x downsampled copy at half the size (same field of view) with a
doubled ray step and sent as a quick JPEG; FULL is the full-size render as JPEG; LOSSLESS, when
asked for, is that same full render as PNG, so its pixels are exactly the engine's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxcast.v1 import render_pb2

PREVIEW_LEVEL = 1
PREVIEW_SCALE = 2  # output size divided by, pixel size and ray step multiplied by


@dataclass(frozen=True)
class Step:
    rung: int  # render_pb2.Rung
    name: str  # metric label
    level: int  # which multi-resolution copy
    scale: int  # 1 = full size; n = size / n, pixel size and ray step * n
    encoding: str  # "jpeg" or "png"
    quality: int = 0  # JPEG quality
    reuse_previous: bool = False  # encode the previous step's picture instead of rendering again


PREVIEW = Step(render_pb2.PREVIEW, "preview", PREVIEW_LEVEL, PREVIEW_SCALE, "jpeg", quality=70)
FULL = Step(render_pb2.FULL, "full", 0, 1, "jpeg", quality=90)
LOSSLESS = Step(render_pb2.LOSSLESS, "lossless", 0, 1, "png", reuse_previous=True)


def ladder(lossless: bool) -> list[Step]:
    return [PREVIEW, FULL, LOSSLESS] if lossless else [PREVIEW, FULL]


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    return max(1, math.ceil(width / scale)), max(1, math.ceil(height / scale))
