"""Dependencies of the REST routes, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from voxcast.gateway.auth.principal import LOCAL_PRINCIPAL, Principal
from voxcast.gateway.auth.store import AuthError, Role, Store
from voxcast.gateway.backends import Backends
from voxcast.gateway.collab.route import check_session_guest
from voxcast.gateway.context import Gateway

from voxcast.v1 import catalog_pb2_grpc

_bearer = HTTPBearer(auto_error=False, description="an access token from POST /api/auth/login")


def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def get_store(gateway: GatewayDep) -> Store:
    return gateway.store


def get_backends(gateway: GatewayDep) -> Backends:
    return gateway.backends


def get_catalog(gateway: GatewayDep) -> catalog_pb2_grpc.CatalogServiceStub:
    return gateway.backends.catalog


StoreDep = Annotated[Store, Depends(get_store)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
CatalogDep = Annotated[catalog_pb2_grpc.CatalogServiceStub, Depends(get_catalog)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(
        401, detail={"code": "unauthorized", "message": message}, headers={"WWW-Authenticate": "Bearer"}
    )


def forbidden(message: str) -> HTTPException:
    return HTTPException(403, detail={"code": "forbidden", "message": message})


async def get_principal(
    request: Request,
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if gateway.open_access:
        return LOCAL_PRINCIPAL
    if credentials is None:
        raise unauthorized("sign in first (Authorization: Bearer <token>)")
    try:
        principal = gateway.tokens.principal(credentials.credentials)
        await check_session_guest(request.app, principal)
    except AuthError as exc:
        raise unauthorized(str(exc)) from None
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_staff(principal: PrincipalDep) -> Principal:
    """A signed-in clinician or admin (not a share-link guest)."""
    if principal.is_guest:
        raise forbidden("share links are read-only")
    return principal


def get_admin(principal: PrincipalDep) -> Principal:
    if principal.role != Role.ADMIN:
        raise forbidden("admins only")
    return principal


StaffDep = Annotated[Principal, Depends(get_staff)]
AdminDep = Annotated[Principal, Depends(get_admin)]


def remote_of(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "unknown"


def check_study(principal: Principal, study_uid: str) -> None:
    if not principal.may_see(study_uid):
        # Same answer as an unknown study: a guest learns nothing about other studies.
        raise HTTPException(404, detail={"code": "not_found", "message": f"no study {study_uid}"})
