from voxcast.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MPR: _ClassVar[Mode]
    MIP: _ClassVar[Mode]
    MINIP: _ClassVar[Mode]
    AVGIP: _ClassVar[Mode]
    VR: _ClassVar[Mode]

class SlabMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLAB_MODE_UNSPECIFIED: _ClassVar[SlabMode]
    SLAB_MIP: _ClassVar[SlabMode]
    SLAB_MINIP: _ClassVar[SlabMode]
    SLAB_MEAN: _ClassVar[SlabMode]

class Rung(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUNG_UNSPECIFIED: _ClassVar[Rung]
    PREVIEW: _ClassVar[Rung]
    FULL: _ClassVar[Rung]
    LOSSLESS: _ClassVar[Rung]
MODE_UNSPECIFIED: Mode
MPR: Mode
MIP: Mode
MINIP: Mode
AVGIP: Mode
VR: Mode
SLAB_MODE_UNSPECIFIED: SlabMode
SLAB_MIP: SlabMode
SLAB_MINIP: SlabMode
SLAB_MEAN: SlabMode
RUNG_UNSPECIFIED: Rung
PREVIEW: Rung
FULL: Rung
LOSSLESS: Rung

class Plane(_message.Message):
    __slots__ = ("center", "right", "down", "pixel_mm")
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    PIXEL_MM_FIELD_NUMBER: _ClassVar[int]
    center: _common_pb2.Vec3
    right: _common_pb2.Vec3
    down: _common_pb2.Vec3
    pixel_mm: float
    def __init__(self, center: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., right: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., down: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., pixel_mm: _Optional[float] = ...) -> None: ...

class Camera(_message.Message):
    __slots__ = ("target", "direction", "up", "fov_mm")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    FOV_MM_FIELD_NUMBER: _ClassVar[int]
    target: _common_pb2.Vec3
    direction: _common_pb2.Vec3
    up: _common_pb2.Vec3
    fov_mm: float
    def __init__(self, target: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., direction: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., up: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., fov_mm: _Optional[float] = ...) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("series_uid", "fusion_series_uid", "mode", "plane", "camera", "width", "height", "preset", "window_center", "window_width", "invert", "colormap", "slab_mm", "slab_mode", "step_mm", "shading", "fusion_opacity", "fusion_colormap", "fusion_window_center", "fusion_window_width", "viewport_id", "lossless")
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    FUSION_SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    WINDOW_CENTER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INVERT_FIELD_NUMBER: _ClassVar[int]
    COLORMAP_FIELD_NUMBER: _ClassVar[int]
    SLAB_MM_FIELD_NUMBER: _ClassVar[int]
    SLAB_MODE_FIELD_NUMBER: _ClassVar[int]
    STEP_MM_FIELD_NUMBER: _ClassVar[int]
    SHADING_FIELD_NUMBER: _ClassVar[int]
    FUSION_OPACITY_FIELD_NUMBER: _ClassVar[int]
    FUSION_COLORMAP_FIELD_NUMBER: _ClassVar[int]
    FUSION_WINDOW_CENTER_FIELD_NUMBER: _ClassVar[int]
    FUSION_WINDOW_WIDTH_FIELD_NUMBER: _ClassVar[int]
    VIEWPORT_ID_FIELD_NUMBER: _ClassVar[int]
    LOSSLESS_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    fusion_series_uid: str
    mode: Mode
    plane: Plane
    camera: Camera
    width: int
    height: int
    preset: str
    window_center: float
    window_width: float
    invert: bool
    colormap: str
    slab_mm: float
    slab_mode: SlabMode
    step_mm: float
    shading: bool
    fusion_opacity: float
    fusion_colormap: str
    fusion_window_center: float
    fusion_window_width: float
    viewport_id: str
    lossless: bool
    def __init__(self, series_uid: _Optional[str] = ..., fusion_series_uid: _Optional[str] = ..., mode: _Optional[_Union[Mode, str]] = ..., plane: _Optional[_Union[Plane, _Mapping]] = ..., camera: _Optional[_Union[Camera, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., preset: _Optional[str] = ..., window_center: _Optional[float] = ..., window_width: _Optional[float] = ..., invert: _Optional[bool] = ..., colormap: _Optional[str] = ..., slab_mm: _Optional[float] = ..., slab_mode: _Optional[_Union[SlabMode, str]] = ..., step_mm: _Optional[float] = ..., shading: _Optional[bool] = ..., fusion_opacity: _Optional[float] = ..., fusion_colormap: _Optional[str] = ..., fusion_window_center: _Optional[float] = ..., fusion_window_width: _Optional[float] = ..., viewport_id: _Optional[str] = ..., lossless: _Optional[bool] = ...) -> None: ...

class OrientationLabels(_message.Message):
    __slots__ = ("top", "bottom", "left", "right")
    TOP_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    top: str
    bottom: str
    left: str
    right: str
    def __init__(self, top: _Optional[str] = ..., bottom: _Optional[str] = ..., left: _Optional[str] = ..., right: _Optional[str] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("rung", "width", "height", "encoding", "sequence", "data", "labels", "render_ms", "encode_ms", "viewport_id", "pixel_mm", "window_center", "window_width")
    RUNG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RENDER_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    VIEWPORT_ID_FIELD_NUMBER: _ClassVar[int]
    PIXEL_MM_FIELD_NUMBER: _ClassVar[int]
    WINDOW_CENTER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_WIDTH_FIELD_NUMBER: _ClassVar[int]
    rung: Rung
    width: int
    height: int
    encoding: str
    sequence: int
    data: bytes
    labels: OrientationLabels
    render_ms: float
    encode_ms: float
    viewport_id: str
    pixel_mm: float
    window_center: float
    window_width: float
    def __init__(self, rung: _Optional[_Union[Rung, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., encoding: _Optional[str] = ..., sequence: _Optional[int] = ..., data: _Optional[bytes] = ..., labels: _Optional[_Union[OrientationLabels, _Mapping]] = ..., render_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., viewport_id: _Optional[str] = ..., pixel_mm: _Optional[float] = ..., window_center: _Optional[float] = ..., window_width: _Optional[float] = ...) -> None: ...

class PreloadRequest(_message.Message):
    __slots__ = ("series_uid",)
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    def __init__(self, series_uid: _Optional[str] = ...) -> None: ...

class PreloadResponse(_message.Message):
    __slots__ = ("geometry", "bytes")
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    geometry: _common_pb2.VolumeGeometry
    bytes: int
    def __init__(self, geometry: _Optional[_Union[_common_pb2.VolumeGeometry, _Mapping]] = ..., bytes: _Optional[int] = ...) -> None: ...
