"""The shapes of what participants send: viewport state, pointers and annotations.

Validated with pydantic so a bad message is refused with the name of the bad field. Positions and
directions are DICOM patient space (LPS, mm), the same convention as the render protocol: the
state of a viewport is everything the gateway needs to build a RenderRequest for it.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidCommand

Vec3 = tuple[float, float, float]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
SeriesUid = Annotated[str, Field(max_length=64, pattern=r"^[0-9.]*$")]


def _finite(v: Vec3) -> Vec3:
    if not all(math.isfinite(c) for c in v):
        raise ValueError("coordinates must be finite numbers")
    return v


def _direction(v: Vec3) -> Vec3:
    _finite(v)
    if math.sqrt(sum(c * c for c in v)) < 1e-6:
        raise ValueError("a direction must not be the zero vector")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plane(_Model):
    center: Vec3
    right: Vec3
    down: Vec3
    pixel_mm: float = Field(0.0, ge=0.0, le=100.0)

    _c = field_validator("center")(_finite)
    _d = field_validator("right", "down")(_direction)


class Camera(_Model):
    target: Vec3
    direction: Vec3
    up: Vec3
    fov_mm: float = Field(0.0, ge=0.0, le=5000.0)

    _t = field_validator("target")(_finite)
    _d = field_validator("direction", "up")(_direction)


class Fusion(_Model):
    series_uid: SeriesUid
    opacity: float = Field(0.5, ge=0.0, le=1.0)
    colormap: str = Field("", max_length=32)
    window_center: float = Field(0.0, allow_inf_nan=False)
    window_width: float = Field(0.0, ge=0.0, allow_inf_nan=False)


class ViewportState(_Model):
    """One viewport as the presenter sees it; the fields follow RenderRequest."""

    series_uid: SeriesUid
    mode: Literal["mpr", "mip", "minip", "avgip", "vr"] = "mpr"
    # The presenter's viewport size: one frame size for everyone, so each view renders once.
    width: int = Field(512, ge=16, le=4096)
    height: int = Field(512, ge=16, le=4096)
    plane: Plane | None = None
    camera: Camera | None = None
    preset: str = Field("", max_length=32)
    window_center: float = Field(0.0, allow_inf_nan=False)
    window_width: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    invert: bool = False
    colormap: str = Field("", max_length=32)
    slab_mm: float = Field(0.0, ge=0.0, le=1000.0)
    slab_mode: Literal["mip", "minip", "mean"] = "mip"
    step_mm: float = Field(0.0, ge=0.0, le=10.0)
    shading: bool = False
    fusion: Fusion | None = None

    @model_validator(mode="after")
    def _view_matches_mode(self) -> ViewportState:
        if self.mode == "mpr" and self.plane is None:
            raise ValueError("mode mpr needs a plane")
        if self.mode != "mpr" and self.camera is None:
            raise ValueError(f"mode {self.mode} needs a camera")
        return self

    def series_uids(self) -> set[str]:
        uids = {self.series_uid}
        if self.fusion is not None:
            uids.add(self.fusion.series_uid)
        return uids


class Layout(_Model):
    """Grid of viewports, e.g. rows=1, columns=3, viewports=["ax", "cor", "sag"]."""

    rows: int = Field(1, ge=1, le=4)
    columns: int = Field(1, ge=1, le=4)
    viewports: list[Id] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _fits(self) -> Layout:
        if len(self.viewports) > self.rows * self.columns:
            raise ValueError(f"{len(self.viewports)} viewports do not fit a {self.rows}x{self.columns} grid")
        if len(set(self.viewports)) != len(self.viewports):
            raise ValueError("viewport ids must be unique")
        return self


class Pointer(_Model):
    """A participant's laser dot; point None hides it."""

    viewport_id: Id
    point: Vec3 | None

    _p = field_validator("point")(lambda v: v if v is None else _finite(v))


class LineInput(_Model):
    kind: Literal["line"]
    viewport_id: Id
    series_uid: SeriesUid
    start: Vec3
    end: Vec3

    _p = field_validator("start", "end")(_finite)


class EllipseInput(_Model):
    """An ellipse on an MPR plane: centre and the two perpendicular semi-axis vectors (mm)."""

    kind: Literal["ellipse"]
    viewport_id: Id
    series_uid: SeriesUid
    center: Vec3
    axis_a: Vec3
    axis_b: Vec3

    _c = field_validator("center")(_finite)
    _a = field_validator("axis_a", "axis_b")(_direction)


class ArrowInput(_Model):
    kind: Literal["arrow"]
    viewport_id: Id
    tip: Vec3
    tail: Vec3
    text: str = Field("", max_length=500)

    _p = field_validator("tip", "tail")(_finite)


AnnotationInput = Annotated[LineInput | EllipseInput | ArrowInput, Field(discriminator="kind")]


class _AnnotationBox(_Model):
    annotation: AnnotationInput


def parse(model, data, what: str):
    """Validate `data` as `model`; a failure names the first bad field."""
    try:
        if model is AnnotationInput:
            return _AnnotationBox.model_validate({"annotation": data}).annotation
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"] if p != "annotation"]
        field = ".".join([what, *loc]) if loc else what
        raise InvalidCommand(f"{field}: {err['msg']}", field=field) from None


class _IdBox(_Model):
    value: Id


class _PointBox(_Model):
    value: Vec3 | None

    _p = field_validator("value")(lambda v: v if v is None else _finite(v))


def parse_id(value, field: str) -> str:
    """A viewport, participant or annotation id: 1-64 letters, digits and ._:-"""
    try:
        return _IdBox(value=value).value
    except ValidationError as exc:
        raise InvalidCommand(f"{field}: {exc.errors()[0]['msg']}", field=field) from None


def parse_point(value, field: str) -> list[float] | None:
    """A world position [x, y, z] in LPS mm, or None."""
    try:
        point = _PointBox(value=value).value
    except ValidationError as exc:
        raise InvalidCommand(f"{field}: {exc.errors()[0]['msg']}", field=field) from None
    return None if point is None else list(point)
