"""Window/level: from modality units to display intensities, presets, and RGB uint8 frames.

A window (center C, width W) maps C - W/2 to level 0 and C + W/2 to level 255, linearly, clamped
and rounded; a colormap turns levels into RGB. NaN (no sample: outside the volume) is background:
black whatever the window, inversion or map.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .colormaps import colormap_with_background


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


# Display levels 0..255; NO_DATA indexes the extra, black row of every colormap table.
NO_DATA = 256


def display_levels(values: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """Grey levels 0..255 (rounded) of values under a window, NO_DATA where a value is NaN."""
    t = np.subtract(values, np.float32(window.lo), dtype=np.float32)
    t *= np.float32(255.0 / window.width)
    np.clip(t, 0.0, 255.0, out=t)  # NaN stays NaN
    if invert:
        np.subtract(np.float32(255.0), t, out=t)
    t += np.float32(0.5)
    t[np.isnan(t)] = NO_DATA
    return t.astype(np.intp)


def to_rgb(levels: np.ndarray, cmap: str = "grayscale") -> np.ndarray:
    """(..., 3) uint8 of display levels through a colormap; NO_DATA is black."""
    return np.take(colormap_with_background(cmap), levels, axis=0)


def windowed_rgb(
    values: np.ndarray, window: Window, invert: bool = False, cmap: str = "grayscale"
) -> np.ndarray:
    return to_rgb(display_levels(values, window, invert), cmap)
