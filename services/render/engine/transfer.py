"""Transfer functions for volume rendering: piecewise-linear colour and opacity over modality
values, with presets, sampled into rays.TransferLUT.

Opacities are stated per REFERENCE_MM of ray length; a LUT for a ray step of s mm holds
alpha' = 1 - (1 - alpha) ** (s / REFERENCE_MM), so the picture does not change with the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rays import TransferLUT
from .window import is_suv, preset_key

REFERENCE_MM = 1.0
LUT_SIZE = 1024


@dataclass(frozen=True)
class TransferFunction:
    """Control points: colour (value, r, g, b) and opacity (value, alpha); values ascending,
    colours and alphas in [0, 1]. Outside the first/last point the end values hold."""

    colour: tuple[tuple[float, float, float, float], ...]
    opacity: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        for name, points, width in (("colour", self.colour, 4), ("opacity", self.opacity, 2)):
            arr = np.asarray(points, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != width or len(arr) < 1:
                raise ValueError(f"transfer function {name} needs rows of {width} numbers")
            if not np.all(np.isfinite(arr)) or np.any(np.diff(arr[:, 0]) < 0):
                raise ValueError(f"transfer function {name} values must be finite and ascending")
            if np.any(arr[:, 1:] < 0) or np.any(arr[:, 1:] > 1):
                raise ValueError(f"transfer function {name} entries must lie in [0, 1]")

    @property
    def range(self) -> tuple[float, float]:
        xs = [p[0] for p in self.colour] + [p[0] for p in self.opacity]
        lo, hi = min(xs), max(xs)
        return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)

    def lut(self, step_mm: float, size: int = LUT_SIZE) -> TransferLUT:
        """The table for a ray step of `step_mm`, opacity corrected for that step."""
        if not step_mm > 0:
            raise ValueError(f"step_mm must be > 0, got {step_mm}")
        lo, hi = self.range
        x = np.linspace(lo, hi, size)
        colour = np.asarray(self.colour, dtype=np.float64)
        opacity = np.asarray(self.opacity, dtype=np.float64)
        table = np.empty((size, 4), dtype=np.float32)
        for c in range(3):
            table[:, c] = np.interp(x, colour[:, 0], colour[:, c + 1])
        alpha = np.interp(x, opacity[:, 0], opacity[:, 1])
        table[:, 3] = 1.0 - (1.0 - alpha) ** (step_mm / REFERENCE_MM)
        return TransferLUT(table=table, lo=float(lo), hi=float(hi))


def _tf(colour, opacity) -> TransferFunction:
    return TransferFunction(tuple(map(tuple, colour)), tuple(map(tuple, opacity)))


# Values in HU for CT, SUV for PET, and normalised 0..1 (of the auto window) for MR.
TRANSFER_PRESETS: dict[str, TransferFunction] = {
    "ct-bone": _tf(
        [(-1000, 0.3, 0.3, 1.0), (150, 0.85, 0.55, 0.35), (300, 1.0, 0.9, 0.8), (1500, 1.0, 1.0, 1.0)],
        [(-1000, 0.0), (150, 0.0), (300, 0.15), (700, 0.6), (1500, 0.8)],
    ),
    "ct-soft-tissue": _tf(
        [(-1000, 0.0, 0.0, 0.0), (-100, 0.65, 0.4, 0.3), (40, 0.85, 0.35, 0.3), (300, 1.0, 0.95, 0.85)],
        [(-1000, 0.0), (-200, 0.0), (-50, 0.02), (60, 0.06), (300, 0.3), (1000, 0.5)],
    ),
    "ct-lung": _tf(
        [(-1000, 0.3, 0.4, 0.6), (-600, 0.7, 0.75, 0.9), (-200, 0.9, 0.6, 0.5), (400, 1.0, 1.0, 1.0)],
        [(-1000, 0.0), (-900, 0.0), (-700, 0.05), (-500, 0.0), (100, 0.0), (400, 0.3)],
    ),
    "ct-angio": _tf(
        [(-1000, 0.0, 0.0, 0.0), (150, 0.7, 0.1, 0.1), (300, 1.0, 0.35, 0.25), (600, 1.0, 0.95, 0.85)],
        [(-1000, 0.0), (120, 0.0), (200, 0.25), (400, 0.6), (1500, 0.8)],
    ),
    "mr-default": _tf(
        [(0.0, 0.0, 0.0, 0.0), (0.3, 0.6, 0.45, 0.4), (1.0, 1.0, 1.0, 1.0)],
        [(0.0, 0.0), (0.15, 0.0), (0.4, 0.05), (1.0, 0.4)],
    ),
    "pet-hot": _tf(
        [(0.0, 0.0, 0.0, 0.0), (2.5, 1.0, 0.0, 0.0), (3.75, 1.0, 0.5, 0.0), (5.0, 1.0, 1.0, 1.0)],
        [(0.0, 0.0), (1.0, 0.0), (2.5, 0.1), (5.0, 0.6)],
    ),
}
# Presets whose values are fractions of the volume's auto window rather than absolute units.
RELATIVE_PRESETS = frozenset({"mr-default"})


def default_transfer_name(modality: str, units: str = "") -> str:
    """CT: bone; PET in SUV: pet-hot; anything else: the relative mr-default."""
    if modality.upper() == "CT":
        return "ct-bone"
    return "pet-hot" if is_suv(modality, units) else "mr-default"


def get_transfer(name: str) -> TransferFunction:
    key = preset_key(name)
    if key not in TRANSFER_PRESETS:
        raise ValueError(f"unknown transfer function preset {name!r}; known: {', '.join(TRANSFER_PRESETS)}")
    return TRANSFER_PRESETS[key]


def rescaled(tf: TransferFunction, lo: float, hi: float) -> TransferFunction:
    """A relative preset (values 0..1) stretched onto [lo, hi] in modality units."""
    span = hi - lo
    return _tf(
        [(lo + x * span, r, g, b) for x, r, g, b in tf.colour],
        [(lo + x * span, a) for x, a in tf.opacity],
    )
