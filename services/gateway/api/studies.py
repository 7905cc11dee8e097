"""Studies: search, their series, download as a zip."""

from __future__ import annotations

import tempfile
import zipfile
from typing import Annotated

import grpc
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from voxcast.gateway.api.deps import CatalogDep, PrincipalDep, StaffDep, StoreDep, check_study, remote_of
from voxcast.gateway.api.schemas import ERRORS, SeriesOut, StudyOut
from voxcast.gateway.errors import http_error, rpc_error

from voxcast.v1 import catalog_pb2

router = APIRouter(prefix="/studies", tags=["studies"])

DATE = r"^\d{8}$"


@router.get("", response_model=list[StudyOut], responses=ERRORS)
async def search_studies(
    principal: PrincipalDep,
    catalog: CatalogDep,
    q: Annotated[str, Query(max_length=64, description="part of the patient's name")] = "",
    patient_id: Annotated[str, Query(max_length=64)] = "",
    modality: Annotated[str, Query(max_length=16)] = "",
    accession_number: Annotated[str, Query(max_length=64)] = "",
    date_from: Annotated[str | None, Query(pattern=DATE, description="YYYYMMDD")] = None,
    date_to: Annotated[str | None, Query(pattern=DATE, description="YYYYMMDD")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[StudyOut]:
    """Studies matching every given criterion, newest first. A share-link guest sees its study only."""
    request = catalog_pb2.SearchStudiesRequest(
        patient_name=f"*{q}*" if q else "",
        patient_id=patient_id,
        modality=modality,
        accession_number=accession_number,
        date_from=date_from or "",
        date_to=date_to or "",
        limit=limit,
        offset=offset,
    )
    try:
        reply = await catalog.SearchStudies(request)
    except grpc.RpcError as exc:
        raise http_error(exc, "study search") from None
    return [StudyOut.of(s) for s in reply.studies if principal.may_see(s.study_uid)]


@router.get("/{study_uid}/series", response_model=list[SeriesOut], responses=ERRORS)
async def list_series(
    study_uid: str, principal: PrincipalDep, catalog: CatalogDep, store: StoreDep, request: Request
) -> list[SeriesOut]:
    check_study(principal, study_uid)
    try:
        reply = await catalog.ListSeries(catalog_pb2.ListSeriesRequest(study_uid=study_uid))
    except grpc.RpcError as exc:
        raise http_error(exc, "series list") from None
    store.audit(principal.name, study_uid, "open", remote_of(request))
    return [SeriesOut.of(s) for s in reply.series]


@router.get(
    "/{study_uid}/download",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {"application/zip": {}}, "description": "the study's DICOM files"}},
)
async def download_study(
    study_uid: str, principal: StaffDep, catalog: CatalogDep, store: StoreDep, request: Request
) -> StreamingResponse:
    """Every stored DICOM file of the study, as a zip (one folder per series)."""
    check_study(principal, study_uid)
    # Spooled to a temporary file: a study can be larger than memory, and a zip needs seeking.
    spool = tempfile.TemporaryFile()
    try:
        series = (await catalog.ListSeries(catalog_pb2.ListSeriesRequest(study_uid=study_uid))).series
        if not series:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"no study {study_uid}")
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as archive:
            for s in series:
                instances = await catalog.ListInstances(
                    catalog_pb2.ListInstancesRequest(series_uid=s.series_uid)
                )
                folder = f"{s.series_number:03d}_{s.modality}_{s.series_uid}"
                for inst in instances.instances:
                    with archive.open(f"{folder}/{inst.sop_instance_uid}.dcm", "w", force_zip64=True) as out:
                        call = catalog.GetInstance(
                            catalog_pb2.GetInstanceRequest(sop_instance_uid=inst.sop_instance_uid)
                        )
                        async for chunk in call:
                            out.write(chunk.data)
    except grpc.RpcError as exc:
        spool.close()
        raise http_error(exc, "download") from None
    store.audit(principal.name, study_uid, "download", remote_of(request))
    size = spool.tell()
    spool.seek(0)

    def chunks():
        with spool:
            while block := spool.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="study-{study_uid}.zip"',
            "Content-Length": str(size),
        },
    )
