"""RenderRequest protos to engine ViewRequests (per ladder step), and rendered images to Frames.

Requests are checked here before any work is admitted, so a bad field is answered at once with
INVALID_ARGUMENT naming it. A plane's pixel size or a camera's field of view of 0 means "fit the
whole volume", which needs the volume's geometry: that part waits for the volume.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from voxcast.v1 import common_pb2, render_pb2
from voxcast.volume import Volume

from .encode import Encoded
from .engine.multires import PreparedVolume
from .engine.raygrid import default_step_mm
from .engine.render import RenderedImage
from .engine.request import ViewRequest
from .engine.views import Camera, Plane, check_size, fit_pixel
from .engine.window import Window
from .errors import InvalidArgument
from .ladder import Step, scaled_size

MODES = {
    render_pb2.MPR: "mpr",
    render_pb2.MIP: "mip",
    render_pb2.MINIP: "minip",
    render_pb2.AVGIP: "avgip",
    render_pb2.VR: "vr",
}
SLAB_MODES = {
    render_pb2.SLAB_MODE_UNSPECIFIED: "mip",
    render_pb2.SLAB_MIP: "mip",
    render_pb2.SLAB_MINIP: "minip",
    render_pb2.SLAB_MEAN: "mean",
}
# Stands in for "fit the volume" while checking a request before its volume is loaded.
_PROVISIONAL_MM = 1.0


def mode_name(request: render_pb2.RenderRequest) -> str:
    try:
        return MODES[request.mode]
    except KeyError:
        names = ", ".join(render_pb2.Mode.Name(m) for m in MODES)
        raise InvalidArgument("mode", f"unknown mode {request.mode}; expected one of {names}") from None


def _vec(field: str, v: common_pb2.Vec3) -> np.ndarray:
    out = np.array([v.x, v.y, v.z], dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise InvalidArgument(field, f"must be finite, got {out.tolist()}")
    return out


def _length(field: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(field, f"must be a finite number of mm >= 0 (0 = fit the volume), got {value}")
    return value


def _size(field: str, value: int) -> int:
    try:
        return check_size(field, value)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc).removeprefix(field).strip()) from None


def _view(request: render_pb2.RenderRequest, volume: Volume | None) -> Plane | Camera:
    """The request's full-size view; with volume None, a provisional one for checking."""
    which = request.WhichOneof("view")
    width, height = _size("width", request.width), _size("height", request.height)
    try:
        if which == "plane":
            p = request.plane
            center = _vec("plane.center", p.center)
            right, down = _vec("plane.right", p.right), _vec("plane.down", p.down)
            pixel = _length("plane.pixel_mm", p.pixel_mm)
            if pixel == 0:
                pixel = _PROVISIONAL_MM if volume is None else None
            plane = Plane(center, right, down, pixel or _PROVISIONAL_MM, width, height)
            if pixel is None:
                plane = replace(plane, pixel_mm=fit_pixel(volume, plane.right, plane.down, width, height))
            return plane
        if which == "camera":
            c = request.camera
            target = _vec("camera.target", c.target)
            direction, up = _vec("camera.direction", c.direction), _vec("camera.up", c.up)
            fov = _length("camera.fov_mm", c.fov_mm)
            camera = Camera(target, direction, up, fov or _PROVISIONAL_MM, width, height)
            if fov == 0 and volume is not None:
                plane = camera.plane
                fov = fit_pixel(volume, plane.right, plane.down, width, height) * height
                camera = replace(camera, fov_mm=fov)
            return camera
    except ValueError as exc:
        raise InvalidArgument(which, str(exc)) from None
    raise InvalidArgument("view", "give a plane (MPR) or a camera (projections, VR)")


def _window(field: str, center: float, width: float):
    if not (math.isfinite(center) and math.isfinite(width)) or width < 0:
        raise InvalidArgument(
            field, f"center and width must be finite and width >= 0, got ({center}, {width})"
        )
    return (center, width) if width > 0 else None


def view_request(
    request: render_pb2.RenderRequest, prepared: PreparedVolume | None = None, step: Step | None = None
):
    """The engine request for one ladder step (default: full size) of `prepared`'s volume; with
    prepared None, a provisional request for checking. Raises InvalidArgument."""
    mode = mode_name(request)
    if request.slab_mode not in SLAB_MODES:
        raise InvalidArgument("slab_mode", f"unknown slab mode {request.slab_mode}")
    view = _view(request, None if prepared is None else prepared.volume)
    step_mm = request.step_mm
    if step is not None and step.scale != 1:
        width, height = scaled_size(view.width, view.height, step.scale)
        view = (
            view.resized(width, height)
            if isinstance(view, Plane)
            else replace(view, width=width, height=height)
        )
        step_mm *= step.scale  # 0 stays 0: the engine's default follows the coarser copy's spacing
    whole_volume = mode != "mpr" and request.slab_mm == 0
    if step is not None and step.ray_step != 1 and whole_volume and prepared is not None:
        level_volume, _ = prepared.level(step.level)
        normal = view.normal if isinstance(view, Plane) else view.plane.normal
        step_mm = max(step_mm, step.ray_step * default_step_mm(level_volume, normal, mode))
    # The engine names the field in its ValueError; errors.status_for makes it INVALID_ARGUMENT.
    return ViewRequest(
        mode=mode,
        plane=view if isinstance(view, Plane) else None,
        camera=view if isinstance(view, Camera) else None,
        preset=request.preset,
        window=_window("window", request.window_center, request.window_width),
        invert=request.invert,
        colormap=request.colormap or "grayscale",
        slab_mm=request.slab_mm,
        slab_mode=SLAB_MODES[request.slab_mode],
        step_mm=step_mm,
        shading=request.shading,
        fusion_opacity=request.fusion_opacity,
        fusion_colormap=request.fusion_colormap or "hot-iron",
        fusion_window=_window("fusion_window", request.fusion_window_center, request.fusion_window_width),
    )


def check(request: render_pb2.RenderRequest) -> None:
    """Every check that needs no volume; raises InvalidArgument or ValueError naming the field."""
    if not request.series_uid.strip():
        raise InvalidArgument("series_uid", "required")
    view_request(request)


def coalescing_key(request: render_pb2.RenderRequest) -> bytes:
    """Requests with equal keys render the same frames: everything but the viewport."""
    canonical = render_pb2.RenderRequest()
    canonical.CopyFrom(request)
    canonical.viewport_id = ""
    return canonical.SerializeToString(deterministic=True)


def frame(
    step: Step, encoded: Encoded, image: RenderedImage, render_ms: float, encode_ms: float, sequence: int
) -> render_pb2.Frame:
    """One rung's picture as a Frame: the encoded image with what a viewer shows beside it."""
    height, width = image.rgb.shape[:2]
    labels = image.labels
    window = image.window or Window(0.0, 0.0)
    return render_pb2.Frame(
        rung=step.rung,
        width=width,
        height=height,
        encoding=encoded.encoding,
        sequence=sequence,
        data=encoded.data,
        labels=render_pb2.OrientationLabels(
            top=labels.top, bottom=labels.bottom, left=labels.left, right=labels.right
        ),
        render_ms=render_ms,
        encode_ms=encode_ms,
        pixel_mm=image.pixel_mm,
        window_center=window.center,
        window_width=window.width,
    )


def for_viewport(frame: render_pb2.Frame, viewport_id: str) -> render_pb2.Frame:
    """A shared (coalesced) frame as one caller's: stamped with that caller's viewport."""
    if frame.viewport_id == viewport_id:
        return frame
    own = render_pb2.Frame()
    own.CopyFrom(frame)
    own.viewport_id = viewport_id
    return own


def _vec3(v) -> common_pb2.Vec3:
    x, y, z = (float(c) for c in v)
    return common_pb2.Vec3(x=x, y=y, z=z)


def to_proto(
    view: ViewRequest, series_uid: str, fusion_series_uid: str = "", *, lossless: bool = False
) -> render_pb2.RenderRequest:
    """An engine request as a RenderRequest (what a client sends to render it remotely)."""
    request = render_pb2.RenderRequest(
        series_uid=series_uid,
        fusion_series_uid=fusion_series_uid,
        mode={name: number for number, name in MODES.items()}[view.mode],
        width=view.width,
        height=view.height,
        preset=view.preset,
        invert=view.invert,
        colormap=view.colormap,
        slab_mm=view.slab_mm,
        slab_mode={"mip": render_pb2.SLAB_MIP, "minip": render_pb2.SLAB_MINIP, "mean": render_pb2.SLAB_MEAN}[
            view.slab_mode
        ],
        step_mm=view.step_mm,
        shading=view.shading,
        fusion_opacity=view.fusion_opacity,
        fusion_colormap=view.fusion_colormap,
        lossless=lossless,
    )
    if view.window is not None:
        request.window_center, request.window_width = view.window
    if view.fusion_window is not None:
        request.fusion_window_center, request.fusion_window_width = view.fusion_window
    if view.plane is not None:
        p = view.plane
        request.plane.CopyFrom(
            render_pb2.Plane(
                center=_vec3(p.center), right=_vec3(p.right), down=_vec3(p.down), pixel_mm=p.pixel_mm
            )
        )
    else:
        c = view.camera
        request.camera.CopyFrom(
            render_pb2.Camera(
                target=_vec3(c.target), direction=_vec3(c.direction), up=_vec3(c.up), fov_mm=c.fov_mm
            )
        )
    return request
