from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vec3(_message.Message):
    __slots__ = ("x", "y", "z")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ...) -> None: ...

class VolumeGeometry(_message.Message):
    __slots__ = ("shape", "spacing_mm", "origin_lps", "direction", "frame_of_reference_uid", "units", "dtype", "warnings")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    SPACING_MM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_LPS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FRAME_OF_REFERENCE_UID_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    spacing_mm: _containers.RepeatedScalarFieldContainer[float]
    origin_lps: Vec3
    direction: _containers.RepeatedScalarFieldContainer[float]
    frame_of_reference_uid: str
    units: str
    dtype: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., spacing_mm: _Optional[_Iterable[float]] = ..., origin_lps: _Optional[_Union[Vec3, _Mapping]] = ..., direction: _Optional[_Iterable[float]] = ..., frame_of_reference_uid: _Optional[str] = ..., units: _Optional[str] = ..., dtype: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
