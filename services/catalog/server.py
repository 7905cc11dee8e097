"""The CatalogService over gRPC, plus the standard health service.

`create_server(settings, port=0)` builds and binds the server without starting it; the caller starts
and stops it. Domain errors become status codes in one table (`STATUS_OF`).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy.exc import OperationalError

from voxcast.config import Settings, get_settings
from voxcast.grpcio import CHANNEL_OPTIONS, geometry_to_proto
from voxcast.v1 import catalog_pb2, catalog_pb2_grpc

from .catalog import Catalog
from .errors import InvalidArgument, NotAVolume, NotFound
from .ingest import rejected

log = logging.getLogger(__name__)
SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
DEFAULT_CHUNK_BYTES = 1024 * 1024
MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_UPLOAD_FILE_BYTES = 8 * 1024**3

# The one place where errors become gRPC statuses; anything else is INTERNAL (and logged).
STATUS_OF: dict[type[Exception], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    NotAVolume: grpc.StatusCode.FAILED_PRECONDITION,
    OperationalError: grpc.StatusCode.UNAVAILABLE,  # the database is down or unreachable
}


def _abort(context: grpc.ServicerContext, exc: Exception):
    for kind, code in STATUS_OF.items():
        if isinstance(exc, kind):
            message = "database unavailable" if isinstance(exc, OperationalError) else str(exc)
            context.abort(code, message)
    log.exception("catalog request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def rpc(method):
    """Map exceptions of a unary or streaming handler to gRPC statuses."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(self, request, context):
            try:
                yield from method(self, request, context)
            except Exception as exc:
                _abort(context, exc)

        return stream

    @functools.wraps(method)
    def unary(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:
            _abort(context, exc)

    return unary


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    @rpc
    def Ingest(self, request_iterator, context):
        results: list[catalog_pb2.IngestResult] = []
        name, spool, size = None, None, 0
        received = False
        for msg in request_iterator:
            received = True
            if not msg.name:
                raise InvalidArgument("every IngestRequest needs a name")
            if spool is not None and msg.name != name:
                # The previous file ended without end_of_file: the upload of it is incomplete.
                results.append(rejected(name, "truncated: upload ended before end_of_file"))
                spool.close()
                spool = None
            if spool is None:
                name, spool, size = msg.name, self.catalog.spool(), 0
            size += len(msg.data)
            if size > MAX_UPLOAD_FILE_BYTES:
                raise InvalidArgument(f"{name}: file larger than {MAX_UPLOAD_FILE_BYTES} bytes")
            spool.write(msg.data)
            if msg.end_of_file:
                with spool:
                    results.extend(self.catalog.ingest_inputs(self.catalog.upload_inputs(name, spool)))
                spool = None
        if spool is not None:
            results.append(rejected(name, "truncated: upload ended before end_of_file"))
            spool.close()
        if not received:
            raise InvalidArgument("empty upload: no files were sent")
        return catalog_pb2.IngestResponse(results=results)

    @rpc
    def SearchStudies(self, request, context):
        studies = self.catalog.search_studies(
            patient_name=request.patient_name,
            patient_id=request.patient_id,
            date_from=request.date_from,
            date_to=request.date_to,
            modality=request.modality,
            accession_number=request.accession_number,
            limit=request.limit,
            offset=request.offset,
        )
        return catalog_pb2.SearchStudiesResponse(studies=studies)

    @rpc
    def ListSeries(self, request, context):
        return catalog_pb2.ListSeriesResponse(series=self.catalog.list_series(request.study_uid))

    @rpc
    def GetSeries(self, request, context):
        return self.catalog.get_series(request.series_uid)

    @rpc
    def ListInstances(self, request, context):
        return catalog_pb2.ListInstancesResponse(instances=self.catalog.list_instances(request.series_uid))

    @rpc
    def GetInstance(self, request, context) -> Iterator[catalog_pb2.DataChunk]:
        with self.catalog.open_instance(request.sop_instance_uid) as f:
            while chunk := f.read(DEFAULT_CHUNK_BYTES):
                if not context.is_active():
                    return
                yield catalog_pb2.DataChunk(data=chunk)

    @rpc
    def FetchVolume(self, request, context) -> Iterator[catalog_pb2.VolumeChunk]:
        chunk = request.chunk_bytes or DEFAULT_CHUNK_BYTES
        if not 1 <= chunk <= MAX_CHUNK_BYTES:
            raise InvalidArgument(f"chunk_bytes must be between 1 and {MAX_CHUNK_BYTES}, got {chunk}")
        volume = self.catalog.fetch_volume(request.series_uid)
        data = memoryview(volume.voxels.astype(volume.voxels.dtype.newbyteorder("<"), copy=False).tobytes())
        yield catalog_pb2.VolumeChunk(
            header=catalog_pb2.VolumeHeader(
                series_uid=request.series_uid,
                modality=volume.modality,
                geometry=geometry_to_proto(volume),
                total_bytes=len(data),
            )
        )
        for start in range(0, len(data), chunk):
            if not context.is_active():
                return
            yield catalog_pb2.VolumeChunk(data=bytes(data[start : start + chunk]))


def create_server(
    settings: Settings | None = None,
    port: int = 0,
    *,
    host: str = "[::]",
    catalog: Catalog | None = None,
    max_workers: int = 8,
) -> tuple[grpc.Server, int]:
    """Build and bind the catalog server (not started). Port 0 picks a free port; returns it."""
    settings = settings or get_settings()
    catalog = catalog or Catalog.open(settings)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="catalog"),
        options=CHANNEL_OPTIONS,
        maximum_concurrent_rpcs=max_workers * 8,
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(catalog), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the catalog server to {host}:{port}")
    return server, bound
