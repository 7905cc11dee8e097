from voxcast.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestRequest(_message.Message):
    __slots__ = ("name", "data", "end_of_file")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    END_OF_FILE_FIELD_NUMBER: _ClassVar[int]
    name: str
    data: bytes
    end_of_file: bool
    def __init__(self, name: _Optional[str] = ..., data: _Optional[bytes] = ..., end_of_file: _Optional[bool] = ...) -> None: ...

class IngestResult(_message.Message):
    __slots__ = ("path", "status", "reason", "study_uid", "series_uid", "sop_instance_uid")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[IngestResult.Status]
        INDEXED: _ClassVar[IngestResult.Status]
        DUPLICATE: _ClassVar[IngestResult.Status]
        REJECTED: _ClassVar[IngestResult.Status]
    STATUS_UNSPECIFIED: IngestResult.Status
    INDEXED: IngestResult.Status
    DUPLICATE: IngestResult.Status
    REJECTED: IngestResult.Status
    PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STUDY_UID_FIELD_NUMBER: _ClassVar[int]
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    SOP_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    path: str
    status: IngestResult.Status
    reason: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    def __init__(self, path: _Optional[str] = ..., status: _Optional[_Union[IngestResult.Status, str]] = ..., reason: _Optional[str] = ..., study_uid: _Optional[str] = ..., series_uid: _Optional[str] = ..., sop_instance_uid: _Optional[str] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[IngestResult, _Mapping]]] = ...) -> None: ...

class Study(_message.Message):
    __slots__ = ("study_uid", "patient_name", "patient_id", "study_date", "description", "accession_number", "modalities", "num_series", "num_instances")
    STUDY_UID_FIELD_NUMBER: _ClassVar[int]
    PATIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    STUDY_DATE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACCESSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    NUM_SERIES_FIELD_NUMBER: _ClassVar[int]
    NUM_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    study_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    accession_number: str
    modalities: _containers.RepeatedScalarFieldContainer[str]
    num_series: int
    num_instances: int
    def __init__(self, study_uid: _Optional[str] = ..., patient_name: _Optional[str] = ..., patient_id: _Optional[str] = ..., study_date: _Optional[str] = ..., description: _Optional[str] = ..., accession_number: _Optional[str] = ..., modalities: _Optional[_Iterable[str]] = ..., num_series: _Optional[int] = ..., num_instances: _Optional[int] = ...) -> None: ...

class SearchStudiesRequest(_message.Message):
    __slots__ = ("patient_name", "patient_id", "date_from", "date_to", "modality", "accession_number", "limit", "offset")
    PATIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    DATE_FROM_FIELD_NUMBER: _ClassVar[int]
    DATE_TO_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    ACCESSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    patient_name: str
    patient_id: str
    date_from: str
    date_to: str
    modality: str
    accession_number: str
    limit: int
    offset: int
    def __init__(self, patient_name: _Optional[str] = ..., patient_id: _Optional[str] = ..., date_from: _Optional[str] = ..., date_to: _Optional[str] = ..., modality: _Optional[str] = ..., accession_number: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class SearchStudiesResponse(_message.Message):
    __slots__ = ("studies",)
    STUDIES_FIELD_NUMBER: _ClassVar[int]
    studies: _containers.RepeatedCompositeFieldContainer[Study]
    def __init__(self, studies: _Optional[_Iterable[_Union[Study, _Mapping]]] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("series_uid", "study_uid", "modality", "description", "series_number", "num_instances", "patient_id", "is_volume", "not_volume_reason", "geometry", "frame_of_reference_uid")
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    STUDY_UID_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SERIES_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NUM_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    PATIENT_ID_FIELD_NUMBER: _ClassVar[int]
    IS_VOLUME_FIELD_NUMBER: _ClassVar[int]
    NOT_VOLUME_REASON_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    FRAME_OF_REFERENCE_UID_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    study_uid: str
    modality: str
    description: str
    series_number: int
    num_instances: int
    patient_id: str
    is_volume: bool
    not_volume_reason: str
    geometry: _common_pb2.VolumeGeometry
    frame_of_reference_uid: str
    def __init__(self, series_uid: _Optional[str] = ..., study_uid: _Optional[str] = ..., modality: _Optional[str] = ..., description: _Optional[str] = ..., series_number: _Optional[int] = ..., num_instances: _Optional[int] = ..., patient_id: _Optional[str] = ..., is_volume: _Optional[bool] = ..., not_volume_reason: _Optional[str] = ..., geometry: _Optional[_Union[_common_pb2.VolumeGeometry, _Mapping]] = ..., frame_of_reference_uid: _Optional[str] = ...) -> None: ...

class ListSeriesRequest(_message.Message):
    __slots__ = ("study_uid",)
    STUDY_UID_FIELD_NUMBER: _ClassVar[int]
    study_uid: str
    def __init__(self, study_uid: _Optional[str] = ...) -> None: ...

class ListSeriesResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    def __init__(self, series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ...) -> None: ...

class GetSeriesRequest(_message.Message):
    __slots__ = ("series_uid",)
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    def __init__(self, series_uid: _Optional[str] = ...) -> None: ...

class Instance(_message.Message):
    __slots__ = ("sop_instance_uid", "series_uid", "sop_class_uid", "instance_number", "size_bytes", "number_of_frames")
    SOP_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    SOP_CLASS_UID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    NUMBER_OF_FRAMES_FIELD_NUMBER: _ClassVar[int]
    sop_instance_uid: str
    series_uid: str
    sop_class_uid: str
    instance_number: int
    size_bytes: int
    number_of_frames: int
    def __init__(self, sop_instance_uid: _Optional[str] = ..., series_uid: _Optional[str] = ..., sop_class_uid: _Optional[str] = ..., instance_number: _Optional[int] = ..., size_bytes: _Optional[int] = ..., number_of_frames: _Optional[int] = ...) -> None: ...

class ListInstancesRequest(_message.Message):
    __slots__ = ("series_uid",)
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    def __init__(self, series_uid: _Optional[str] = ...) -> None: ...

class ListInstancesResponse(_message.Message):
    __slots__ = ("instances",)
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[Instance]
    def __init__(self, instances: _Optional[_Iterable[_Union[Instance, _Mapping]]] = ...) -> None: ...

class GetInstanceRequest(_message.Message):
    __slots__ = ("sop_instance_uid",)
    SOP_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    sop_instance_uid: str
    def __init__(self, sop_instance_uid: _Optional[str] = ...) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class FetchVolumeRequest(_message.Message):
    __slots__ = ("series_uid", "chunk_bytes")
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    chunk_bytes: int
    def __init__(self, series_uid: _Optional[str] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class VolumeHeader(_message.Message):
    __slots__ = ("series_uid", "modality", "geometry", "total_bytes")
    SERIES_UID_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    series_uid: str
    modality: str
    geometry: _common_pb2.VolumeGeometry
    total_bytes: int
    def __init__(self, series_uid: _Optional[str] = ..., modality: _Optional[str] = ..., geometry: _Optional[_Union[_common_pb2.VolumeGeometry, _Mapping]] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class VolumeChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: VolumeHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[VolumeHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...
