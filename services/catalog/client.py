"""CatalogClient: the catalog's methods over gRPC, for the CLI, the render service and the gateway.

The methods mirror `Catalog` (the in-process catalog) and return the same proto messages; errors
arrive as grpc.RpcError with the status codes the server documents (NOT_FOUND, INVALID_ARGUMENT,
FAILED_PRECONDITION for a series that is not a volume).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from voxcast.grpcio import CHANNEL_OPTIONS, geometry_from_proto
from voxcast.v1 import catalog_pb2, catalog_pb2_grpc
from voxcast.volume import Volume

from .ingest import rejected
from .sources import ARCHIVE_SEPARATOR, iter_paths

UPLOAD_CHUNK_BYTES = 1024 * 1024


class CatalogClient:
    def __init__(self, target: str | grpc.Channel, *, timeout: float | None = None):
        """`target` is "host:port" (a channel is opened and owned) or an existing channel."""
        self.target = target if isinstance(target, str) else ""
        if isinstance(target, str):
            self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._owns_channel = True
        else:
            self._channel = target
            self._owns_channel = False
        self._stub = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        self.timeout = timeout

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    def health(self) -> str:
        stub = health_pb2_grpc.HealthStub(self._channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # -- ingest -------------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | os.PathLike]) -> list[catalog_pb2.IngestResult]:
        """Upload local files, folders (walked here), DICOMDIRs and zip archives (expanded by the
        server); one result per file, in input order."""
        inputs = list(iter_paths(paths, expand_archives=False))
        uploads = [i for i in inputs if not i.rejected]
        if not uploads:
            return [rejected(i.path, i.rejected) for i in inputs]

        def requests() -> Iterator[catalog_pb2.IngestRequest]:
            for item in uploads:
                try:
                    data = item.read()
                except OSError as exc:
                    # Sent as an empty file so that the server reports it; the reason is kept below.
                    item.rejected = f"unreadable: {exc.strerror or exc}"
                    data = b""
                if not data:
                    yield catalog_pb2.IngestRequest(name=item.path, end_of_file=True)
                for start in range(0, len(data), UPLOAD_CHUNK_BYTES):
                    end = start + UPLOAD_CHUNK_BYTES
                    yield catalog_pb2.IngestRequest(
                        name=item.path, data=data[start:end], end_of_file=end >= len(data)
                    )

        results = list(self._stub.Ingest(requests(), timeout=self.timeout).results)
        # The server answers in upload order: a file's result, or an archive's entries' results.
        out: list[catalog_pb2.IngestResult] = []
        k = 0
        uploaded = {id(i) for i in uploads}
        for item in inputs:
            if id(item) not in uploaded:
                out.append(rejected(item.path, item.rejected))
                continue
            while k < len(results) and (
                results[k].path == item.path or results[k].path.startswith(item.path + ARCHIVE_SEPARATOR)
            ):
                # An unreadable file went up empty; say why rather than "empty file".
                out.append(rejected(item.path, item.rejected) if item.rejected else results[k])
                k += 1
        out.extend(results[k:])
        return out

    def iter_ingest(self, paths: Iterable[str | os.PathLike]) -> Iterator[catalog_pb2.IngestResult]:
        """`ingest` with the local catalog's streaming signature (results come after the upload)."""
        return iter(self.ingest(paths))

    # -- queries ------------------------------------------------------------------------------

    def search_studies(self, **filters) -> list[catalog_pb2.Study]:
        request = catalog_pb2.SearchStudiesRequest(**filters)
        return list(self._stub.SearchStudies(request, timeout=self.timeout).studies)

    def list_series(self, study_uid: str) -> list[catalog_pb2.Series]:
        request = catalog_pb2.ListSeriesRequest(study_uid=study_uid)
        return list(self._stub.ListSeries(request, timeout=self.timeout).series)

    def get_series(self, series_uid: str) -> catalog_pb2.Series:
        return self._stub.GetSeries(catalog_pb2.GetSeriesRequest(series_uid=series_uid), timeout=self.timeout)

    def list_instances(self, series_uid: str) -> list[catalog_pb2.Instance]:
        request = catalog_pb2.ListInstancesRequest(series_uid=series_uid)
        return list(self._stub.ListInstances(request, timeout=self.timeout).instances)

    def get_instance(self, sop_instance_uid: str) -> bytes:
        request = catalog_pb2.GetInstanceRequest(sop_instance_uid=sop_instance_uid)
        return b"".join(c.data for c in self._stub.GetInstance(request, timeout=self.timeout))

    def fetch_volume(self, series_uid: str, chunk_bytes: int = 0) -> Volume:
        """Stream the assembled volume: header (geometry), then the voxel bytes."""
        request = catalog_pb2.FetchVolumeRequest(series_uid=series_uid, chunk_bytes=chunk_bytes)
        stream = self._stub.FetchVolume(request, timeout=self.timeout)
        header = None
        buffer = bytearray()
        for chunk in stream:
            if chunk.HasField("header"):
                header = chunk.header
                buffer = bytearray()
            else:
                buffer.extend(chunk.data)
        if header is None:
            raise ValueError(f"FetchVolume({series_uid}) sent no header")
        if len(buffer) != header.total_bytes:
            raise ValueError(f"FetchVolume({series_uid}): got {len(buffer)} of {header.total_bytes} bytes")
        return volume_from_stream(header, buffer)


def volume_from_stream(header: catalog_pb2.VolumeHeader, data: bytes | bytearray) -> Volume:
    g = header.geometry
    geometry = geometry_from_proto(g)
    dtype = np.dtype(g.dtype).newbyteorder("<")
    voxels = np.frombuffer(data, dtype=dtype).reshape(geometry["shape"]).astype(g.dtype, copy=False)
    return Volume.from_geometry(
        voxels,
        geometry["origin"],
        geometry["spacing"],
        geometry["direction"],
        frame_of_reference_uid=g.frame_of_reference_uid,
        modality=header.modality,
        units=g.units,
        series_uid=header.series_uid,
        warnings=list(g.warnings),
    )
