"""What to render: one validated request object. Every check of a request's fields lives here
(or in the view classes it holds), so bad input fails with a ValueError naming the field
before any voxel is touched."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .colormaps import check_colormap
from .transfer import TRANSFER_PRESETS
from .views import Camera, Plane
from .window import AUTO, WINDOW_PRESETS, Window, check_window, preset_key

Mode = Literal["mpr", "mip", "minip", "avgip", "vr"]
SlabMode = Literal["mip", "minip", "mean"]

MODES = ("mpr", "mip", "minip", "avgip", "vr")
SLAB_MODES = ("mip", "minip", "mean")
# The rays.py reducer of each projection mode and slab mode.
REDUCERS = {"mip": "max", "minip": "min", "avgip": "mean", "mean": "mean"}


@dataclass(frozen=True)
class ViewRequest:
    """One picture: a mode, a view (plane or camera, which carries the image size) and display
    parameters.

    mode: mpr | mip | minip | avgip | vr. Any view works with any mode; a camera is the plane
        through its target, and projections look along the plane's normal (right x down).
    preset: a window preset (mpr and projections: brain, soft-tissue, lung, bone, liver, suv,
        auto) or a transfer-function preset (vr); "" = the modality's default.
    window: (center, width) in modality units; overrides the preset.
    slab_mm: mpr thick slab, or a projection limited to a slab around the view's centre plane;
        0 = thin plane (mpr) / whole volume (projections, vr). slab_mode combines an mpr slab.
    step_mm: distance between ray samples; 0 = one voxel (projections, slabs) or half the
        smallest spacing (vr).
    fusion_*: how a second volume is shown over the first (opacity 0..1, colormap, window in its
        units; None = the fusion modality's default).
    """

    mode: Mode
    plane: Plane | None = None
    camera: Camera | None = None
    preset: str = ""
    window: Window | tuple[float, float] | None = None
    invert: bool = False
    colormap: str = "grayscale"
    slab_mm: float = 0.0
    slab_mode: SlabMode = "mip"
    step_mm: float = 0.0
    shading: bool = False
    fusion_opacity: float = 0.5
    fusion_colormap: str = "hot-iron"
    fusion_window: Window | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        mode = str(self.mode).strip().lower()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        set_(self, "mode", mode)
        if (self.plane is None) == (self.camera is None):
            raise ValueError("view: give exactly one of plane or camera")
        if self.plane is not None and not isinstance(self.plane, Plane):
            raise ValueError("plane must be a Plane")
        if self.camera is not None and not isinstance(self.camera, Camera):
            raise ValueError("camera must be a Camera")
        set_(self, "preset", self._check_preset(mode, self.preset))
        if self.window is not None:
            set_(self, "window", check_window(self.window, "window"))
        set_(self, "colormap", check_colormap(self.colormap))
        set_(self, "slab_mm", _non_negative("slab_mm", self.slab_mm))
        slab_mode = str(self.slab_mode).strip().lower()
        if slab_mode not in SLAB_MODES:
            raise ValueError(f"slab_mode must be one of {', '.join(SLAB_MODES)}, got {self.slab_mode!r}")
        set_(self, "slab_mode", slab_mode)
        set_(self, "step_mm", _non_negative("step_mm", self.step_mm))
        opacity = _non_negative("fusion_opacity", self.fusion_opacity)
        if opacity > 1:
            raise ValueError(f"fusion_opacity must be between 0 and 1, got {opacity}")
        set_(self, "fusion_opacity", opacity)
        set_(self, "fusion_colormap", check_colormap(self.fusion_colormap))
        if self.fusion_window is not None:
            set_(self, "fusion_window", check_window(self.fusion_window, "fusion_window"))
        set_(self, "invert", bool(self.invert))
        set_(self, "shading", bool(self.shading))

    @staticmethod
    def _check_preset(mode: str, preset: str) -> str:
        if not preset:
            return ""
        key = preset_key(str(preset))
        known = list(TRANSFER_PRESETS) if mode == "vr" else [*WINDOW_PRESETS, AUTO]
        if key not in known:
            kind = "transfer function" if mode == "vr" else "window"
            raise ValueError(
                f"preset: unknown {kind} preset {preset!r} for mode {mode}; known: {', '.join(known)}"
            )
        return key

    @property
    def view(self) -> Plane:
        """The image plane (a camera's plane through its target)."""
        return self.plane if self.plane is not None else self.camera.plane

    @property
    def width(self) -> int:
        return self.view.width

    @property
    def height(self) -> int:
        return self.view.height

    @property
    def reducer(self) -> str:
        """How samples along a ray combine: the slab mode for mpr, the mode for projections, and
        "max" for vr (used only by a fused PET, shown as its MIP over the rendering)."""
        if self.mode == "mpr":
            return REDUCERS[self.slab_mode]
        return REDUCERS.get(self.mode, "max")


def _non_negative(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out
