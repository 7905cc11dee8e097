"""The catalog in this process: ingest, index queries, volume assembly. The gRPC server exposes it;
`CatalogClient` offers the same methods over a channel, so callers (the CLI) can use either."""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import pydicom

from voxcast.config import Settings, get_settings
from voxcast.grpcio import geometry_to_proto
from voxcast.v1 import catalog_pb2
from voxcast.volume import Volume

from .assemble import geometry_volume, load_volume, plan_series
from .blobstore import BlobStore, FileBlobStore
from .errors import InvalidArgument, NotAVolume, NotFound
from .index import Index, InstanceInfo, SeriesInfo, StudyInfo
from .ingest import Ingestor
from .sources import Input, is_zip, iter_paths, iter_zip
from .volcache import DEFAULT_CACHE_BYTES, VolumeCache

log = logging.getLogger(__name__)
MAX_SEARCH_LIMIT = 1000
DEFAULT_SEARCH_LIMIT = 100


class Catalog:
    def __init__(self, index: Index, blobs: BlobStore, tmp_dir: Path, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.index = index
        self.blobs = blobs
        self.volumes = VolumeCache(cache_bytes)
        self.tmp_dir = Path(tmp_dir)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._ingestor = Ingestor(index, blobs)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Catalog:
        settings = settings or get_settings()
        return cls(Index(settings.db_url), FileBlobStore(settings.blobs), settings.home / "tmp")

    def close(self) -> None:
        self.index.close()

    # -- ingest -------------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | os.PathLike]) -> list[catalog_pb2.IngestResult]:
        """Ingest local files, folders, zip archives and DICOMDIRs; one result per file found."""
        return list(self.iter_ingest(paths))

    def iter_ingest(self, paths: Iterable[str | os.PathLike]) -> Iterator[catalog_pb2.IngestResult]:
        """`ingest`, yielding each result as soon as its file is done."""
        return self._ingestor.ingest(iter_paths(paths))

    def ingest_inputs(self, inputs: Iterable[Input]) -> Iterator[catalog_pb2.IngestResult]:
        return self._ingestor.ingest(inputs)

    def upload_inputs(self, name: str, spool: BinaryIO) -> Iterator[Input]:
        """The inputs of one uploaded file: a zip archive's entries, or the file itself."""
        spool.seek(0)
        head = spool.read(4)
        spool.seek(0)
        if is_zip(head):
            return iter_zip(name, lambda: zipfile.ZipFile(spool))

        def read() -> bytes:
            spool.seek(0)
            return spool.read()

        return iter([Input(name, read=read)])

    def spool(self) -> BinaryIO:
        """A temporary file for an upload in progress: in memory while small, on disk beyond."""
        return tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024, dir=self.tmp_dir)

    # -- queries ------------------------------------------------------------------------------

    def search_studies(self, **filters) -> list[catalog_pb2.Study]:
        limit = int(filters.pop("limit", 0) or 0)
        offset = int(filters.pop("offset", 0) or 0)
        if limit < 0 or offset < 0:
            raise InvalidArgument("limit and offset must not be negative")
        for key in ("date_from", "date_to"):
            value = filters.get(key) or ""
            if value and (len(value) != 8 or not value.isdigit()):
                raise InvalidArgument(f"{key} must be YYYYMMDD, got {value!r}")
        limit = min(limit or DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)
        studies = self.index.search_studies(limit=limit, offset=offset, **filters)
        return [study_proto(s) for s in studies]

    def list_series(self, study_uid: str) -> list[catalog_pb2.Series]:
        _require(study_uid, "study_uid")
        if not self.index.study_exists(study_uid):
            raise NotFound(f"no study {study_uid}")
        return [self._series_proto(s) for s in self.index.list_series(study_uid)]

    def get_series(self, series_uid: str) -> catalog_pb2.Series:
        return self._series_proto(self._series(series_uid))

    def list_instances(self, series_uid: str) -> list[catalog_pb2.Instance]:
        self._series(series_uid)
        return [instance_proto(i) for i in self.index.list_instances(series_uid)]

    def open_instance(self, sop_instance_uid: str) -> BinaryIO:
        _require(sop_instance_uid, "sop_instance_uid")
        info = self.index.get_instance(sop_instance_uid)
        if info is None:
            raise NotFound(f"no instance {sop_instance_uid}")
        return self.blobs.open(info.blob_key)

    def get_instance(self, sop_instance_uid: str) -> bytes:
        with self.open_instance(sop_instance_uid) as f:
            return f.read()

    # -- volumes ------------------------------------------------------------------------------

    def volume_info(self, series_uid: str) -> dict:
        """Geometry (or why not a volume), from the index cache or from the files' headers."""
        series = self._series(series_uid)
        if series.volume_info is not None:
            return series.volume_info
        instances = self.index.list_instances(series_uid)
        headers = [self._read(i, pixels=False) for i in instances]
        try:
            info = plan_series(headers).info()
        except NotAVolume as exc:
            info = {"is_volume": False, "reason": str(exc)}
        self.index.set_volume_info(series_uid, info, len(instances))
        return info

    def fetch_volume(self, series_uid: str) -> Volume:
        """Assemble and decode the series (or take it from the cache; its voxels are read-only).
        Raises NotAVolume when it is not one."""
        series = self._series(series_uid)
        cached = self.volumes.get(series_uid, series.num_instances)
        if cached is not None:
            return cached
        instances = self.index.list_instances(series_uid)
        plan = plan_series([self._read(i, pixels=False) for i in instances])
        volume = load_volume(plan, lambda k: self._read(instances[k], pixels=True), series_uid)
        if str(volume.voxels.dtype) != plan.dtype:
            # Values overflowed int16: keep GetSeries telling the dtype FetchVolume sends.
            plan.dtype = str(volume.voxels.dtype)
            self.index.set_volume_info(series_uid, plan.info(), len(instances))
        self.volumes.put(series_uid, len(instances), volume)
        return volume

    # -- helpers ------------------------------------------------------------------------------

    def _series(self, series_uid: str) -> SeriesInfo:
        _require(series_uid, "series_uid")
        series = self.index.get_series(series_uid)
        if series is None:
            raise NotFound(f"no series {series_uid}")
        return series

    def _read(self, instance: InstanceInfo, *, pixels: bool) -> pydicom.Dataset:
        """The stored data set; without pixels only the header is read from the blob."""
        with self.blobs.open(instance.blob_key) as f:
            return pydicom.dcmread(f, stop_before_pixels=not pixels, force=True)

    def _series_proto(self, series: SeriesInfo) -> catalog_pb2.Series:
        info = self.volume_info(series.series_uid) if series.volume_info is None else series.volume_info
        out = catalog_pb2.Series(
            series_uid=series.series_uid,
            study_uid=series.study_uid,
            modality=series.modality,
            description=series.description,
            series_number=series.series_number,
            num_instances=series.num_instances,
            patient_id=series.patient_id,
            is_volume=bool(info["is_volume"]),
            frame_of_reference_uid=series.frame_of_reference_uid,
        )
        if info["is_volume"]:
            out.geometry.CopyFrom(geometry_to_proto(geometry_volume(info), dtype=info["dtype"]))
        else:
            out.not_volume_reason = info["reason"]
        return out


def _require(value: str, name: str) -> None:
    if not value:
        raise InvalidArgument(f"{name} is required")


def study_proto(s: StudyInfo) -> catalog_pb2.Study:
    return catalog_pb2.Study(
        study_uid=s.study_uid,
        patient_name=s.patient_name,
        patient_id=s.patient_id,
        study_date=s.study_date,
        description=s.description,
        accession_number=s.accession_number,
        modalities=s.modalities,
        num_series=s.num_series,
        num_instances=s.num_instances,
    )


def instance_proto(i: InstanceInfo) -> catalog_pb2.Instance:
    return catalog_pb2.Instance(
        sop_instance_uid=i.sop_instance_uid,
        series_uid=i.series_uid,
        sop_class_uid=i.sop_class_uid,
        instance_number=i.instance_number,
        size_bytes=i.size_bytes,
        number_of_frames=i.number_of_frames,
    )
