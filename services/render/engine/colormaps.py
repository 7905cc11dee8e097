"""Colormaps: 256-entry uint8 RGB tables built from piecewise-linear control points.

Hot iron and PET follow the shapes of the DICOM standard colour palettes (PS3.6 Annex B);
rainbow is a jet-like blue-cyan-green-yellow-red ramp.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# name -> control points (position in [0, 1], r, g, b in [0, 1])
_POINTS: dict[str, list[tuple[float, float, float, float]]] = {
    "grayscale": [(0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0)],
    "hot-iron": [(0.0, 0.0, 0.0, 0.0), (0.5, 1.0, 0.0, 0.0), (0.75, 1.0, 0.5, 0.0), (1.0, 1.0, 1.0, 1.0)],
    "pet": [
        (0.0, 0.0, 0.0, 0.0),
        (0.25, 0.0, 0.5, 0.5),
        (0.5, 0.5, 0.0, 1.0),
        (0.75, 1.0, 0.5, 0.0),
        (1.0, 1.0, 1.0, 1.0),
    ],
    "rainbow": [
        (0.0, 0.0, 0.0, 0.5),
        (0.125, 0.0, 0.0, 1.0),
        (0.375, 0.0, 1.0, 1.0),
        (0.625, 1.0, 1.0, 0.0),
        (0.875, 1.0, 0.0, 0.0),
        (1.0, 0.5, 0.0, 0.0),
    ],
}
COLORMAPS = tuple(_POINTS)


def check_colormap(name: str) -> str:
    key = (name or "grayscale").strip().lower().replace("_", "-").replace(" ", "-")
    if key not in _POINTS:
        raise ValueError(f"unknown colormap {name!r}; known: {', '.join(COLORMAPS)}")
    return key


@lru_cache
def colormap(name: str) -> np.ndarray:
    """(256, 3) uint8 table of a colormap."""
    points = np.asarray(_POINTS[check_colormap(name)])
    x = np.linspace(0.0, 1.0, 256)
    rgb = np.stack([np.interp(x, points[:, 0], points[:, c]) for c in (1, 2, 3)], axis=1)
    table = np.round(rgb * 255).astype(np.uint8)
    table.setflags(write=False)
    return table


@lru_cache
def colormap_with_background(name: str) -> np.ndarray:
    """(257, 3) uint8: the colormap, then black for pixels without data."""
    table = np.vstack([colormap(name), np.zeros((1, 3), np.uint8)])
    table.setflags(write=False)
    return table
