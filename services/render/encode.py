"""Frame encoders: RGB uint8 pictures to the bytes a Frame carries.

JPEG goes through libjpeg-turbo (simplejpeg) when it is installed, else Pillow; the lossless
rung is PNG at a fast compression level (diagnostic viewing ends on exactly the rendered pixels).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np

Encoding = Literal["jpeg", "png"]

JPEG_QUALITY = {"preview": 70, "full": 90}
# zlib level 1: a 512x512 frame compresses in a few ms; higher levels cost much more time for
# little size, and the lossless rung matters when the view has settled, not in the interaction loop.
PNG_COMPRESS_LEVEL = 1

try:
    import simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is a pinned dependency; Pillow is the fallback
    simplejpeg = None


@dataclass(frozen=True)
class Encoded:
    data: bytes
    encoding: Encoding


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 picture, got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


def encode_jpeg(rgb: np.ndarray, quality: int) -> Encoded:
    rgb = _check_rgb(rgb)
    if simplejpeg is not None:
        data = simplejpeg.encode_jpeg(rgb, quality=quality, colorspace="RGB", colorsubsampling="420")
    else:  # pragma: no cover
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
    return Encoded(data, "jpeg")


def encode_png(rgb: np.ndarray) -> Encoded:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_check_rgb(rgb)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return Encoded(buf.getvalue(), "png")


def decode(data: bytes) -> np.ndarray:
    """Any frame's bytes back to RGB uint8 (clients and tests)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
