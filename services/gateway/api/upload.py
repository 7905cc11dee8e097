"""Upload of DICOM files or zip archives, forwarded to the catalog's Ingest stream."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, File, HTTPException, UploadFile
from voxcast.gateway.api.deps import CatalogDep, StaffDep
from voxcast.gateway.api.schemas import ERRORS, IngestResultOut, UploadOut
from voxcast.gateway.errors import http_error

from voxcast.v1 import catalog_pb2

router = APIRouter(tags=["upload"])

CHUNK = 1 << 20
STATUS = {
    catalog_pb2.IngestResult.INDEXED: "indexed",
    catalog_pb2.IngestResult.DUPLICATE: "duplicate",
    catalog_pb2.IngestResult.REJECTED: "rejected",
}


async def _ingest_requests(files: list[UploadFile]):
    for index, upload in enumerate(files):
        # Names must be unique within one Ingest stream, and two uploads may share a file name.
        name = f"{index:05d}/{upload.filename or 'upload'}"
        # One chunk is held back so that the last message of a file carries end_of_file.
        pending = await upload.read(CHUNK)
        while data := await upload.read(CHUNK):
            yield catalog_pb2.IngestRequest(name=name, data=pending)
            pending = data
        yield catalog_pb2.IngestRequest(name=name, data=pending, end_of_file=True)


def _display_name(path: str) -> str:
    """The catalog's path without the uniqueness prefix added above."""
    prefix, sep, rest = path.partition("/")
    return rest if sep and len(prefix) == 5 and prefix.isdigit() else path


@router.post("/upload", response_model=UploadOut, responses={**ERRORS, 400: {"description": "no file"}})
async def upload(
    principal: StaffDep,
    catalog: CatalogDep,
    files: Annotated[list[UploadFile], File(description="DICOM files and/or zip archives of them")],
) -> UploadOut:
    """Store and index the files. Every DICOM file gets a result; a bad one never fails the others."""
    if not files:
        raise HTTPException(400, detail={"code": "invalid_argument", "message": "no file uploaded"})
    try:
        reply = await catalog.Ingest(_ingest_requests(files))
    except grpc.RpcError as exc:
        raise http_error(exc, "ingest") from None
    results = [
        IngestResultOut(
            file=_display_name(r.path),
            status=STATUS.get(r.status, "rejected"),
            reason=r.reason,
            study_uid=r.study_uid,
            series_uid=r.series_uid,
            sop_instance_uid=r.sop_instance_uid,
        )
        for r in reply.results
    ]
    count = lambda status: sum(r.status == status for r in results)  # noqa: E731
    return UploadOut(
        indexed=count("indexed"), duplicate=count("duplicate"), rejected=count("rejected"), results=results
    )
