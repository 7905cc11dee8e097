"""Client -> server messages of the /ws protocol (docs/protocol.md), validated with pydantic.

A message that fails validation is answered with an error event naming the offending field."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from voxcast.gateway.viewstate import ModeName, Orientation, SlabModeName

ViewportId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Uid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9.]+$")]
Size = Annotated[int, Field(ge=16, le=2048)]
Preset = Annotated[str, Field(max_length=32, pattern=r"^[A-Za-z0-9_-]*$")]
Colormap = Annotated[str, Field(max_length=32, pattern=r"^[A-Za-z0-9_-]*$")]
Coordinate = Annotated[float, Field(ge=-1e5, le=1e5)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Auth(Message):
    type: Literal["auth"]
    token: str = Field(max_length=4096)


class Window(Message):
    center: float = Field(ge=-1e5, le=1e5)
    width: float = Field(gt=0, le=1e5)


class Delta(Message):
    dx: float = Field(ge=-1e4, le=1e4)
    dy: float = Field(ge=-1e4, le=1e4)


class ViewChanges(Message):
    """Every field optional; several may come in one message and are applied in this order."""

    mode: ModeName | None = None
    orientation: Orientation | None = None
    size: tuple[Size, Size] | None = None
    center: tuple[Coordinate, Coordinate, Coordinate] | None = None
    scroll: int | None = Field(None, ge=-10000, le=10000)
    pan: Delta | None = None
    zoom: float | None = Field(None, gt=0.05, le=20)
    rotate: Delta | None = None
    window: Window | None = None
    preset: Preset | None = None
    invert: bool | None = None
    slab_mm: float | None = Field(None, ge=0, le=2000)
    slab_mode: SlabModeName | None = None
    fusion_series_uid: Uid | Literal[""] | None = None
    fusion_opacity: float | None = Field(None, ge=0, le=1)
    fusion_colormap: Colormap | None = None
    lossless: bool | None = None


class Open(ViewChanges):
    type: Literal["open"]
    viewport: ViewportId
    series_uid: Uid


class View(ViewChanges):
    type: Literal["view"]
    viewport: ViewportId


class Lossless(Message):
    type: Literal["lossless"]
    viewport: ViewportId


class Close(Message):
    type: Literal["close"]
    viewport: ViewportId


class Ping(Message):
    type: Literal["ping"]
    id: int | str | None = None


ClientMessage = Annotated[Auth | Open | View | Lossless | Close | Ping, Field(discriminator="type")]
_adapter: TypeAdapter = TypeAdapter(ClientMessage)


class BadMessage(Exception):
    def __init__(self, field: str, message: str, viewport: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.viewport = viewport


def parse(text: str) -> Auth | Open | View | Lossless | Close | Ping:
    """The message in a text frame; BadMessage names the first field at fault."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadMessage("", f"not JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise BadMessage("", "a message is a JSON object")
    viewport = raw.get("viewport") if isinstance(raw.get("viewport"), str) else None
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        # Drop the union tag pydantic puts first ("view", "open"...): the field path is what helps.
        loc = [str(p) for p in error["loc"]]
        if loc and loc[0] == raw.get("type"):
            loc = loc[1:]
        if error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
            loc = ["type"]
        raise BadMessage(".".join(loc), error["msg"], viewport) from None
