"""Sign-in and the current principal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from voxcast.gateway.api.deps import GatewayDep, PrincipalDep, remote_of, unauthorized
from voxcast.gateway.api.schemas import ERRORS as ERRORS_AUTH
from voxcast.gateway.api.schemas import THROTTLED, AuthMode, LoginRequest, PrincipalOut, TokenOut
from voxcast.gateway.auth.store import AuthError
from voxcast.gateway.auth.throttle import Limit, SignInThrottle, Throttled, wait_text
from voxcast.gateway.context import Gateway

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])
T = TypeVar("T")


def get_throttle(request: Request) -> SignInThrottle:
    return request.app.state.throttle


ThrottleDep = Annotated[SignInThrottle, Depends(get_throttle)]


def client_address(request: Request) -> str:
    """The client's IP: the peer's, or X-Forwarded-For's from a proxy trusted by
    VOXCAST_FORWARDED_ALLOW_IPS (uvicorn rewrites the peer address then)."""
    return request.client.host if request.client else "unknown"


def too_many(throttled: Throttled, what: str) -> HTTPException:
    return HTTPException(
        429,
        detail={
            "code": "too_many_attempts",
            "message": f"too many {what}: try again in {wait_text(throttled.retry_after_s)}",
        },
        headers={"Retry-After": str(throttled.retry_after_s)},
    )


async def throttled_check(
    check: Callable[[], T],
    limits: Sequence[Limit],
    *,
    what: str,
    audit_as: tuple[str, str, str],
    gateway: Gateway,
    throttle: SignInThrottle,
    request: Request,
) -> T:
    """Run `check` (argon2: in a thread) as one attempt under `limits`. While a limit is used up:
    429, and no check. A refusal (AuthError) is audited as `<action>-failed` (and `<action>-throttled`
    when it used the last try) under `audit_as` = (who, study, action), then re-raised; a success
    takes the attempt back."""
    try:
        admission = await throttle.admit(limits)
    except Throttled as exc:
        # No argon2, no database write: a flood of refused attempts costs a counter lookup each.
        raise too_many(exc, what) from None
    try:
        result = await asyncio.to_thread(check)
    except AuthError:
        who, study_uid, action = audit_as
        remote = remote_of(request)
        gateway.store.audit(who, study_uid, f"{action}-failed", remote)
        if admission.last:
            log.warning("%s reached a limit (%s from %s): refused for a while", what, who, remote)
            gateway.store.audit(who, study_uid, f"{action}-throttled", remote)
        raise
    await throttle.succeeded(limits, admission)
    return result


@router.post("/login", response_model=TokenOut, responses={**ERRORS_AUTH, **THROTTLED})
async def login(body: LoginRequest, gateway: GatewayDep, throttle: ThrottleDep, request: Request) -> TokenOut:
    """Exchange a username and password for a short-lived access token (Bearer, and `token` for /ws).
    Too many failed sign-ins for one username from one address, for one username from anywhere (a
    much higher ceiling), or from one address, get 429 until the window ends."""
    try:
        user = await throttled_check(
            lambda: gateway.store.authenticate(body.username, body.password),
            throttle.login_limits(body.username, client_address(request)),
            what="failed sign-ins",
            audit_as=(f"login:{body.username}", "", "login"),
            gateway=gateway,
            throttle=throttle,
            request=request,
        )
    except AuthError as exc:
        raise unauthorized(str(exc)) from None
    return TokenOut(
        access_token=gateway.tokens.for_user(user),
        expires_in=gateway.tokens.minutes * 60,
        user=PrincipalOut(name=f"user:{user.username}", role=user.role),
    )


@router.get("/me", response_model=PrincipalOut, responses=ERRORS_AUTH)
async def me(principal: PrincipalDep, gateway: GatewayDep) -> PrincipalOut:
    return PrincipalOut(**principal.public())


@router.get("/mode", response_model=AuthMode)
async def mode(gateway: GatewayDep) -> AuthMode:
    """Whether this gateway needs a sign-in (an open loopback gateway does not)."""
    return AuthMode(sign_in_required=not gateway.open_access)
