"""render(): a prepared volume and a ViewRequest in, an RGB picture (and its values) out.

The steps: the view's world sample points (raygrid), the same points in each volume's index
space, the backend's project/composite, then window/colormap or the composited colour, and the
fusion volume blended over the primary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .backends import get_backend
from .multires import PreparedVolume
from .raygrid import WorldGrid, default_step_mm, world_grid
from .rays import Backend, Shading
from .request import ViewRequest
from .transfer import RELATIVE_PRESETS, default_transfer_name, get_transfer, rescaled
from .views import Labels
from .window import AUTO, NO_DATA, WINDOW_PRESETS, Window, default_window_name, display_levels, to_rgb


@dataclass
class RenderedImage:
    """rgb: (H, W, 3) uint8 as displayed. values: (H, W) float32 in modality units before
    windowing, NaN where the view misses the volume; None for vr and fused pictures."""

    rgb: np.ndarray
    values: np.ndarray | None
    labels: Labels
    pixel_mm: float
    window: Window | None = None
    backend: str = ""
    level: int = 0
    nsamples: int = 1
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def render_ms(self) -> float:
        return self.timing.get("total_ms", 0.0)


def resolve_window(prepared: PreparedVolume, name: str, explicit: Window | None) -> Window:
    """The explicit window, else the named preset, else the modality's default."""
    if explicit is not None:
        return explicit
    name = name or default_window_name(prepared.volume.modality, prepared.volume.units)
    return prepared.auto_window if name == AUTO else WINDOW_PRESETS[name]


def _lut(prepared: PreparedVolume, request: ViewRequest, step_mm: float):
    name = request.preset or default_transfer_name(prepared.volume.modality, prepared.volume.units)
    tf = get_transfer(name)
    if name in RELATIVE_PRESETS:
        window = prepared.auto_window
        tf = rescaled(tf, window.lo, window.hi)
    return tf.lut(step_mm)


def _shading(volume, request: ViewRequest, direction: np.ndarray) -> Shading | None:
    if not request.shading:
        return None
    gradient_matrix = np.linalg.inv(volume.affine[:3, :3]).T
    return Shading(gradient_matrix=gradient_matrix, light=-direction)


def _backend_and_handle(prepared: PreparedVolume, level: int, backend: Backend | str | None):
    volume, handle = prepared.level(level)
    if backend is None:
        return volume, prepared.backend, handle
    if isinstance(backend, str):
        backend = get_backend(backend)
    if backend is prepared.backend:
        return volume, backend, handle
    # Another backend than the one the volume was prepared for: hand it the voxels now.
    return volume, backend, backend.prepare(volume.voxels)


def _check_fusion(primary: PreparedVolume, fusion: PreparedVolume) -> None:
    a, b = primary.volume.frame_of_reference_uid, fusion.volume.frame_of_reference_uid
    if a != b:
        raise ValueError(
            f"fusion: frame of reference {b or '(none)'} differs from the primary's {a or '(none)'};"
            " the volumes cannot be registered by their coordinates"
        )


def _fusion_layer(
    fusion: PreparedVolume, request: ViewRequest, wgrid: WorldGrid, level: int, backend, reducer: str
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8, alpha float32) of the fusion volume at the primary's sample points."""
    volume, fbackend, handle = _backend_and_handle(fusion, min(level, len(fusion.levels) - 1), backend)
    values = fbackend.project(handle, wgrid.in_index_space(volume), reducer)
    levels = display_levels(values, resolve_window(fusion, "", request.fusion_window))
    alpha = np.where(levels == NO_DATA, np.float32(0), np.float32(request.fusion_opacity))
    return to_rgb(levels, request.fusion_colormap), alpha


def blend(under: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 RGB of `over` laid on `under` with per-pixel opacity `alpha`."""
    base = under.astype(np.float32)
    out = base + alpha[..., None] * (over.astype(np.float32) - base)
    out += np.float32(0.5)
    return out.astype(np.uint8)


def render(
    prepared: PreparedVolume,
    request: ViewRequest,
    *,
    fusion: PreparedVolume | None = None,
    level: int = 0,
    backend: Backend | str | None = None,
) -> RenderedImage:
    """Render `request` from level `level` of `prepared` (0 = full resolution, 1 = 2x, 2 = 4x
    coarser: the preview), with `fusion` blended over it when given.

    `fusion` must share the primary's frame of reference; it is sampled at the primary's world
    sample points (a fused mpr shows the PET on the same plane or slab; projections and vr show the
    PET's MIP along the same rays), windowed by request.fusion_window (default: its modality's),
    coloured by request.fusion_colormap and blended with request.fusion_opacity where it has data.
    `backend` overrides the one the volume was prepared with (the voxels are handed over per call).
    Raises ValueError for a request that does not fit the volumes (fusion frame of reference,
    too many samples per ray).
    """
    started = time.perf_counter()
    if fusion is not None:
        _check_fusion(prepared, fusion)
    volume, backend_used, handle = _backend_and_handle(prepared, level, backend)
    plane = request.view
    mode = request.mode

    thin = mode == "mpr" and request.slab_mm == 0
    step = 0.0 if thin else request.step_mm or default_step_mm(volume, plane.normal, mode)
    wgrid = world_grid(plane, None if mode == "mpr" else volume, slab_mm=request.slab_mm, step_mm=step)
    grid = wgrid.in_index_space(volume)
    timing: dict[str, float] = {}

    t0 = time.perf_counter()
    window = values = None
    if mode == "vr":
        lut = _lut(prepared, request, wgrid.step_mm)
        rgba = backend_used.composite(handle, grid, lut, _shading(volume, request, plane.normal))
        timing["sample_ms"] = (time.perf_counter() - t0) * 1e3
        # Premultiplied colour over a black background is the colour itself.
        rgb = (np.clip(rgba[..., :3], 0.0, 1.0) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    else:
        values = backend_used.project(handle, grid, request.reducer)
        timing["sample_ms"] = (time.perf_counter() - t0) * 1e3
        window = resolve_window(prepared, request.preset, request.window)
        rgb = to_rgb(display_levels(values, window, request.invert), request.colormap)
    timing["display_ms"] = (time.perf_counter() - t0) * 1e3 - timing["sample_ms"]

    if fusion is not None and request.fusion_opacity > 0:  # at opacity 0 the PET would not show
        t1 = time.perf_counter()
        # A fused slice (or slab) samples the PET like the primary; projections and vr show its MIP.
        reducer = request.reducer if mode == "mpr" else "max"
        rgb = blend(rgb, *_fusion_layer(fusion, request, wgrid, level, backend, reducer))
        timing["fusion_ms"] = (time.perf_counter() - t1) * 1e3
    if fusion is not None:
        values = None  # a fused picture is not the primary's values
    timing["total_ms"] = (time.perf_counter() - started) * 1e3
    return RenderedImage(
        rgb=rgb,
        values=values,
        labels=plane.labels,
        pixel_mm=plane.pixel_mm,
        window=window,
        backend=backend_used.name,
        level=level,
        nsamples=grid.nsamples,
        timing=timing,
    )
