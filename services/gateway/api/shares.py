"""Share links: a clinician lets a patient or a consultant view one study, read-only, until a date."""

from __future__ import annotations

import asyncio

import grpc
from fastapi import APIRouter, HTTPException, Request
from voxcast.gateway.api.auth import ThrottleDep, client_address, throttled_check
from voxcast.gateway.api.deps import (
    CatalogDep,
    GatewayDep,
    StaffDep,
    remote_of,
    unauthorized,
)
from voxcast.gateway.api.schemas import (
    ERRORS,
    THROTTLED,
    PrincipalOut,
    ShareCreate,
    ShareCreated,
    ShareInfo,
    ShareOpen,
    ShareOut,
    TokenOut,
)
from voxcast.gateway.auth.store import AuthError, ShareLink, now
from voxcast.gateway.errors import http_error

from voxcast.v1 import catalog_pb2

router = APIRouter(prefix="/shares", tags=["shares"])


def _out(link: ShareLink) -> dict:
    return {
        "id": link.id,
        "study_uid": link.study_uid,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "has_pin": link.pin_hash is not None,
        "revoked_at": link.revoked_at,
        "active": link.revoked_at is None and link.expires_at > now(),
    }


@router.post("", response_model=ShareCreated, status_code=201, responses=ERRORS)
async def create_share(
    body: ShareCreate, principal: StaffDep, catalog: CatalogDep, gateway: GatewayDep, request: Request
) -> ShareCreated:
    """A link to one study. The token is in the answer only: keep the URL, it cannot be shown again."""
    try:
        studies = await catalog.ListSeries(catalog_pb2.ListSeriesRequest(study_uid=body.study_uid))
    except grpc.RpcError as exc:
        raise http_error(exc, "study") from None
    if not studies.series:
        raise HTTPException(404, detail={"code": "not_found", "message": f"no study {body.study_uid}"})
    if principal.user_id is None:
        raise HTTPException(403, detail={"code": "forbidden", "message": "sign in as a user to share"})
    new = await asyncio.to_thread(
        gateway.store.create_share, body.study_uid, principal.user_id, body.expires_minutes, body.pin
    )
    gateway.store.audit(principal.name, body.study_uid, "share", remote_of(request))
    url = str(request.base_url).rstrip("/") + f"/#/share/{new.token}"
    return ShareCreated(**_out(new.link), token=new.token, url=url)


@router.get("", response_model=list[ShareOut], responses=ERRORS)
async def list_shares(principal: StaffDep, gateway: GatewayDep) -> list[ShareOut]:
    """Your links (an admin sees everyone's)."""
    links = gateway.store.list_shares(None if principal.is_admin else principal.user_id)
    return [ShareOut(**_out(link)) for link in links]


@router.delete("/{share_id}", response_model=ShareOut, responses=ERRORS)
async def revoke_share(share_id: int, principal: StaffDep, gateway: GatewayDep) -> ShareOut:
    """Revoke a link at once: tokens already handed out by it stop working too."""
    link = gateway.store.revoke_share(share_id, None if principal.is_admin else principal.user_id)
    if link is None:
        raise HTTPException(404, detail={"code": "not_found", "message": f"no share link {share_id}"})
    return ShareOut(**_out(link))


@router.get("/{token}/info", response_model=ShareInfo, responses=ERRORS)
async def share_info(token: str, gateway: GatewayDep) -> ShareInfo:
    """Whether a link needs its PIN (the landing page asks before opening it)."""
    try:
        link = gateway.store.find_share(token)
    except AuthError as exc:
        raise unauthorized(str(exc)) from None
    return ShareInfo(pin_required=link.pin_hash is not None, expires_at=link.expires_at)


@router.post("/{token}/open", response_model=TokenOut, responses={**ERRORS, **THROTTLED})
async def open_share(
    token: str, body: ShareOpen, gateway: GatewayDep, throttle: ThrottleDep, request: Request
) -> TokenOut:
    """Exchange a link (and its PIN) for a guest token limited to the link's study. Too many wrong PINs
    for one link, or from one address, get 429 until the window ends."""
    try:
        link = gateway.store.find_share(token)
        if not (link.pin_hash and body.pin):
            gateway.store.check_pin(link, body.pin)  # no PIN to check, or none given: no guess
        else:
            await throttled_check(
                lambda: gateway.store.check_pin(link, body.pin),
                throttle.pin_limits(link.id, client_address(request)),
                what="wrong PINs",
                audit_as=(f"share:{link.id}", link.study_uid, "share-pin"),
                gateway=gateway,
                throttle=throttle,
                request=request,
            )
    except AuthError as exc:
        raise unauthorized(str(exc)) from None
    gateway.store.audit(f"share:{link.id}", link.study_uid, "share-open", remote_of(request))
    access = gateway.tokens.for_share(link)
    seconds = int((link.expires_at - now()).total_seconds())
    return TokenOut(
        access_token=access,
        expires_in=min(seconds, gateway.tokens.minutes * 60),
        user=PrincipalOut(name=f"share:{link.id}", role="guest", study_uid=link.study_uid),
    )
