"""One series: its description and geometry, and its thumbnail."""

from __future__ import annotations

import grpc
from fastapi import APIRouter, HTTPException, Request, Response
from voxcast.gateway.api.deps import CatalogDep, GatewayDep, PrincipalDep, check_study, remote_of
from voxcast.gateway.api.schemas import ERRORS, SeriesOut
from voxcast.gateway.auth.principal import Principal
from voxcast.gateway.errors import http_error

from voxcast.v1 import catalog_pb2, catalog_pb2_grpc

router = APIRouter(prefix="/series", tags=["series"])


async def _get(catalog: catalog_pb2_grpc.CatalogServiceStub, principal: Principal, series_uid: str):
    try:
        series = await catalog.GetSeries(catalog_pb2.GetSeriesRequest(series_uid=series_uid))
    except grpc.RpcError as exc:
        raise http_error(exc, "series") from None
    check_study(principal, series.study_uid)
    return series


@router.get("/{series_uid}", response_model=SeriesOut, responses=ERRORS)
async def series_info(
    series_uid: str, principal: PrincipalDep, catalog: CatalogDep, gateway: GatewayDep, request: Request
) -> SeriesOut:
    series = await _get(catalog, principal, series_uid)
    gateway.store.audit(principal.name, series.study_uid, "series", remote_of(request))
    return SeriesOut.of(series)


@router.get(
    "/{series_uid}/thumbnail",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "a small axial image"}},
)
async def thumbnail(
    series_uid: str, principal: PrincipalDep, catalog: CatalogDep, gateway: GatewayDep
) -> Response:
    """A small axial slice through the middle of a volume series, rendered once and cached."""
    series = await _get(catalog, principal, series_uid)
    if not series.is_volume:
        raise HTTPException(
            409,
            detail={"code": "failed_precondition", "message": f"not a volume: {series.not_volume_reason}"},
        )
    try:
        data, media_type = await gateway.thumbnails.get(series, gateway.backends.render)
    except grpc.RpcError as exc:
        raise http_error(exc, "thumbnail") from None
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
