"""Window/level: from modality units to display intensities, presets, and RGB uint8 frames.

A window (center C, width W) maps C - W/2 to black and C + W/2 to white, linearly, clamped.
NaN (no sample: outside the volume) is background: black whatever the window, inversion or map.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .colormaps import colormap


class Window(NamedTuple):
    center: float
    width: float

    @property
    def lo(self) -> float:
        return self.center - self.width / 2.0

    @property
    def hi(self) -> float:
        return self.center + self.width / 2.0


# CT presets in HU (center, width), the values most viewers ship.
WINDOW_PRESETS: dict[str, Window] = {
    "brain": Window(40.0, 80.0),
    "soft-tissue": Window(40.0, 400.0),
    "lung": Window(-600.0, 1500.0),
    "bone": Window(400.0, 1800.0),
    "liver": Window(60.0, 160.0),
    # PET in SUV: 0 (black) to 5.
    "suv": Window(2.5, 5.0),
}
# `auto`: from the volume's own 1st and 99th percentiles (MR, anything without a fixed scale).
AUTO = "auto"
AUTO_PERCENTILES = (1.0, 99.0)


def check_window(value, field: str = "window") -> Window:
    try:
        center, width = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be (center, width), got {value!r}") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError(f"{field} needs a finite center and a width > 0, got ({center}, {width})")
    return Window(center, width)


def preset_key(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def auto_window(voxels: np.ndarray) -> Window:
    """The window spanning the 1st to 99th percentile of the voxels (at least 1 unit wide)."""
    lo, hi = (float(x) for x in np.percentile(voxels, AUTO_PERCENTILES))
    return Window((lo + hi) / 2.0, max(hi - lo, 1.0))


def is_suv(modality: str, units: str) -> bool:
    """PET in SUV (the catalog falls back to Bq/ml when the tags do not allow SUV)."""
    return modality.upper() == "PT" and units.upper().startswith("SUV")


def default_window_name(modality: str, units: str = "") -> str:
    """CT: soft tissue; PET in SUV: 0..5; anything else (MR, PET in Bq/ml): auto."""
    if modality.upper() == "CT":
        return "soft-tissue"
    return "suv" if is_suv(modality, units) else AUTO


def is_window_preset(name: str) -> bool:
    return preset_key(name) in WINDOW_PRESETS or preset_key(name) == AUTO


def normalise(values: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """Display intensities in [0, 1] (float32); NaN stays NaN."""
    t = np.clip((np.asarray(values, dtype=np.float32) - window.lo) / window.width, 0.0, 1.0)
    return 1.0 - t if invert else t


def to_rgb(intensity: np.ndarray, cmap: str = "grayscale") -> np.ndarray:
    """(H, W, 3) uint8 from intensities in [0, 1]; NaN is black."""
    table = colormap(cmap)
    nan = np.isnan(intensity)
    index = np.round(np.where(nan, 0.0, intensity) * 255).astype(np.intp)
    rgb = table[index]
    rgb[nan] = 0
    return rgb


def windowed_rgb(
    values: np.ndarray, window: Window, invert: bool = False, cmap: str = "grayscale"
) -> np.ndarray:
    return to_rgb(normalise(values, window, invert), cmap)
