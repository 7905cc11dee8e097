"""The state of one viewport, kept by the gateway: which series, which mode, where the view is,
window/level, slab, fusion. Client messages change it; `render_request` turns it into a RenderRequest.

Everything is in patient space (LPS, mm), like the render service's Plane and Camera: a view is a
centre and two unit screen axes, `right` and `down`; the viewing direction is right x down. A shared
session mirrors these states between participants, so the model is plain data plus pure updates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from voxcast.grpcio import geometry_from_proto
from voxcast.v1 import common_pb2, render_pb2

ModeName = Literal["mpr", "mip", "minip", "avgip", "vr"]
Orientation = Literal["axial", "coronal", "sagittal"]
SlabModeName = Literal["mip", "minip", "mean"]

MODES: dict[str, int] = {
    "mpr": render_pb2.MPR,
    "mip": render_pb2.MIP,
    "minip": render_pb2.MINIP,
    "avgip": render_pb2.AVGIP,
    "vr": render_pb2.VR,
}
SLAB_MODES: dict[str, int] = {
    "mip": render_pb2.SLAB_MIP,
    "minip": render_pb2.SLAB_MINIP,
    "mean": render_pb2.SLAB_MEAN,
}

# Screen axes (right, down) of the radiological display conventions, in LPS.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1, 0, 0), (0, 1, 0)),  # top anterior, left = patient right, seen from the feet
    "coronal": ((1, 0, 0), (0, 0, -1)),  # top superior, left = patient right, seen from the front
    "sagittal": ((0, 1, 0), (0, 0, -1)),  # top superior, left = anterior, seen from the patient's left
}

MIN_ZOOM_PX_MM, MAX_ZOOM_PX_MM = 0.01, 50.0


@dataclass(frozen=True)
class VolumeBox:
    """What the view model needs of a series' geometry: its corners, axes and spacing in LPS."""

    origin: np.ndarray
    axes: np.ndarray  # 3x3, row k = unit LPS vector of index axis k
    spacing: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def from_proto(cls, geometry: common_pb2.VolumeGeometry) -> VolumeBox:
        g = geometry_from_proto(geometry)
        if len(g["shape"]) != 3:
            raise ValueError("the series has no volume geometry")
        return cls(g["origin"], g["direction"], g["spacing"], g["shape"])

    def to_world(self, index: np.ndarray) -> np.ndarray:
        return self.origin + (np.asarray(index, dtype=float) * self.spacing) @ self.axes

    def to_index(self, world: np.ndarray) -> np.ndarray:
        return np.linalg.solve(
            (self.axes * self.spacing[:, None]).T, np.asarray(world, dtype=float) - self.origin
        )

    @property
    def corners(self) -> np.ndarray:
        n = np.array(self.shape, dtype=float) - 1
        idx = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])])
        return np.array([self.to_world(i) for i in idx])

    @property
    def center(self) -> np.ndarray:
        # On a voxel, not between two: the first view shows a real slice.
        return self.to_world(np.floor((np.array(self.shape, dtype=float) - 1) / 2))

    def extent_along(self, direction: np.ndarray) -> tuple[float, float]:
        proj = self.corners @ direction
        return float(proj.min()), float(proj.max())

    def slice_axis(self, normal: np.ndarray) -> int:
        """The index axis most aligned with a view normal: what "next slice" steps along."""
        return int(np.argmax(np.abs(self.axes @ normal)))

    def slice_step(self, normal: np.ndarray) -> float:
        return float(self.spacing[self.slice_axis(normal)])

    def clamp(self, point: np.ndarray) -> np.ndarray:
        index = np.clip(self.to_index(point), 0, np.array(self.shape, dtype=float) - 1)
        return self.to_world(index)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v)
    if n < 1e-9:
        raise ValueError("zero-length direction")
    return v / n


def _rotate(v: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rodrigues' rotation of v about a unit axis."""
    t = math.radians(degrees)
    return v * math.cos(t) + np.cross(axis, v) * math.sin(t) + axis * np.dot(axis, v) * (1 - math.cos(t))


@dataclass(frozen=True)
class ViewState:
    """One viewport's view. Immutable: every change returns a new state with version + 1."""

    series_uid: str
    box: VolumeBox = field(repr=False, compare=False)
    mode: ModeName = "mpr"
    orientation: Orientation = "axial"
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    right: tuple[float, float, float] = (1.0, 0.0, 0.0)
    down: tuple[float, float, float] = (0.0, 1.0, 0.0)
    pixel_mm: float = 1.0
    width: int = 512
    height: int = 512
    preset: str = ""
    window_center: float = 0.0
    window_width: float = 0.0  # 0 = the preset's window
    invert: bool = False
    colormap: str = ""
    slab_mm: float = 0.0
    slab_mode: SlabModeName = "mip"
    shading: bool = True
    fusion_series_uid: str = ""
    fusion_opacity: float = 0.5
    fusion_colormap: str = ""
    lossless: bool = True  # settle on a lossless frame when the view stays still
    version: int = 0

    @classmethod
    def initial(cls, series_uid: str, box: VolumeBox, **options) -> ViewState:
        state = cls(series_uid=series_uid, box=box, center=tuple(box.center), **options)
        return state.reoriented(state.orientation, version=0)

    # Derived geometry

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.right, self.down)

    def fit_pixel_mm(self, right=None, down=None) -> float:
        r = np.asarray(right if right is not None else self.right)
        d = np.asarray(down if down is not None else self.down)
        lo_r, hi_r = self.box.extent_along(r)
        lo_d, hi_d = self.box.extent_along(d)
        return max((hi_r - lo_r) / self.width, (hi_d - lo_d) / self.height, 1e-3) * 1.05

    def position(self) -> dict:
        """Where the view is along its normal: slice index (of the most aligned axis), mm, and the
        distance one scroll step moves the plane."""
        n = self.normal
        axis = self.box.slice_axis(n)
        index = self.box.to_index(np.array(self.center))[axis]
        return {
            "slice": int(round(float(index))),
            "slices": int(self.box.shape[axis]),
            "position_mm": round(float(np.dot(self.center, n)), 2),
            "slice_mm": round(self.box.slice_step(n), 4),
        }

    def public(self) -> dict:
        """The state as sent to clients (and mirrored by shared sessions)."""
        return {
            "series_uid": self.series_uid,
            "mode": self.mode,
            "orientation": self.orientation,
            "center": [round(c, 3) for c in self.center],
            "right": [round(c, 6) for c in self.right],
            "down": [round(c, 6) for c in self.down],
            "pixel_mm": self.pixel_mm,
            "width": self.width,
            "height": self.height,
            "preset": self.preset,
            "window_center": self.window_center,
            "window_width": self.window_width,
            "invert": self.invert,
            "slab_mm": self.slab_mm,
            "slab_mode": self.slab_mode,
            "fusion_series_uid": self.fusion_series_uid,
            "fusion_opacity": self.fusion_opacity,
            "fusion_colormap": self.fusion_colormap,
            "version": self.version,
            **self.position(),
        }

    # Updates: each returns a new state

    def _next(self, **changes) -> ViewState:
        return replace(self, version=self.version + 1, **changes)

    def reoriented(self, orientation: Orientation, version: int | None = None) -> ViewState:
        right, down = (np.array(v, dtype=float) for v in ORIENTATIONS[orientation])
        pixel_mm = self.fit_pixel_mm(right, down)
        return replace(
            self,
            orientation=orientation,
            right=tuple(right),
            down=tuple(down),
            pixel_mm=pixel_mm,
            version=self.version + 1 if version is None else version,
        )

    def scrolled(self, slices: int) -> ViewState:
        n = self.normal
        center = np.array(self.center) + slices * self.box.slice_step(n) * n
        lo, hi = self.box.extent_along(n)
        along = float(np.clip(np.dot(center, n), lo, hi))
        center += (along - np.dot(center, n)) * n
        return self._next(center=tuple(center))

    def centered_at(self, point) -> ViewState:
        return self._next(center=tuple(self.box.clamp(np.asarray(point, dtype=float))))

    def panned(self, dx: float, dy: float) -> ViewState:
        # The image follows the pointer: dragging right moves the view centre left.
        center = np.array(self.center) - self.pixel_mm * (
            dx * np.array(self.right) + dy * np.array(self.down)
        )
        return self._next(center=tuple(center))

    def zoomed(self, factor: float) -> ViewState:
        return self._next(pixel_mm=float(np.clip(self.pixel_mm / factor, MIN_ZOOM_PX_MM, MAX_ZOOM_PX_MM)))

    def rotated(self, dx_degrees: float, dy_degrees: float) -> ViewState:
        """Turn the view: horizontal drag about the screen's up axis, vertical about its right axis."""
        right, down = np.array(self.right), np.array(self.down)
        right = _rotate(right, _unit(-down), dx_degrees)
        down = _rotate(down, _unit(right), -dy_degrees)
        right = _unit(right)
        down = _unit(down - np.dot(down, right) * right)  # keep the axes orthonormal
        return self._next(right=tuple(right), down=tuple(down))

    def resized(self, width: int, height: int) -> ViewState:
        # Keep the field of view: the larger side keeps its millimetres.
        scale = max(self.width, self.height) / max(width, height)
        return self._next(width=width, height=height, pixel_mm=self.pixel_mm * scale)

    def with_(self, **changes) -> ViewState:
        return self._next(**changes)

    def render_fields(self) -> dict:
        """The view as RenderRequest fields (plane or camera, window, slab, fusion), in plain data:
        what a shared session mirrors to its participants (collab.models.ViewportState)."""
        fields: dict = {
            "series_uid": self.series_uid,
            "mode": self.mode,
            "width": self.width,
            "height": self.height,
            "preset": self.preset,
            "window_center": self.window_center,
            "window_width": self.window_width,
            "invert": self.invert,
            "colormap": self.colormap,
            "slab_mm": self.slab_mm,
            "slab_mode": self.slab_mode,
            "shading": self.shading,
        }
        if self.mode == "mpr":
            fields["plane"] = {
                "center": self.center,
                "right": self.right,
                "down": self.down,
                "pixel_mm": self.pixel_mm,
            }
        else:
            fields["camera"] = {
                "target": self.center,
                "direction": tuple(float(c) for c in self.normal),
                "up": tuple(-float(c) for c in self.down),
                "fov_mm": self.pixel_mm * self.height,
            }
        if self.fusion_series_uid:
            fields["fusion"] = {
                "series_uid": self.fusion_series_uid,
                "opacity": self.fusion_opacity,
                "colormap": self.fusion_colormap,
            }
        return fields

    def render_request(self, viewport_id: str, lossless: bool | None = None) -> render_pb2.RenderRequest:
        f = self.render_fields()
        request = render_pb2.RenderRequest(
            series_uid=f["series_uid"],
            mode=MODES[f["mode"]],
            width=f["width"],
            height=f["height"],
            preset=f["preset"],
            window_center=f["window_center"],
            window_width=f["window_width"],
            invert=f["invert"],
            colormap=f["colormap"],
            slab_mm=f["slab_mm"],
            slab_mode=SLAB_MODES[f["slab_mode"]],
            shading=f["shading"],
            viewport_id=viewport_id,
            lossless=self.lossless if lossless is None else lossless,
        )
        if "fusion" in f:
            request.fusion_series_uid = f["fusion"]["series_uid"]
            request.fusion_opacity = f["fusion"]["opacity"]
            request.fusion_colormap = f["fusion"]["colormap"]
        if "plane" in f:
            p = f["plane"]
            request.plane.CopyFrom(
                render_pb2.Plane(
                    center=_vec3(p["center"]),
                    right=_vec3(p["right"]),
                    down=_vec3(p["down"]),
                    pixel_mm=p["pixel_mm"],
                )
            )
        else:
            c = f["camera"]
            request.camera.CopyFrom(
                render_pb2.Camera(
                    target=_vec3(c["target"]),
                    direction=_vec3(c["direction"]),
                    up=_vec3(c["up"]),
                    fov_mm=c["fov_mm"],
                )
            )
        return request


def _vec3(v) -> common_pb2.Vec3:
    return common_pb2.Vec3(x=float(v[0]), y=float(v[1]), z=float(v[2]))
