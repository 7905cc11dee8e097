"""Sign-in and the current principal."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from voxcast.gateway.api.deps import GatewayDep, PrincipalDep, remote_of, unauthorized
from voxcast.gateway.api.schemas import ERRORS as ERRORS_AUTH
from voxcast.gateway.api.schemas import THROTTLED, AuthMode, LoginRequest, PrincipalOut, TokenOut
from voxcast.gateway.auth.store import AuthError
from voxcast.gateway.auth.throttle import SignInThrottle, Throttled, wait_text

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])


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


@router.post("/login", response_model=TokenOut, responses={**ERRORS_AUTH, **THROTTLED})
async def login(body: LoginRequest, gateway: GatewayDep, throttle: ThrottleDep, request: Request) -> TokenOut:
    """Exchange a username and password for a short-lived access token (Bearer, and `token` for /ws).
    Too many failed sign-ins for one username from one address, for one username from anywhere (a
    much higher ceiling), or from one address, get 429 until the window ends."""
    limits = throttle.login_limits(body.username, client_address(request))
    try:
        admission = await throttle.admit(limits)
    except Throttled as exc:
        # No argon2, no database write: a flood of refused attempts costs a counter lookup each.
        raise too_many(exc, "failed sign-ins") from None
    try:
        # argon2 is deliberately slow: keep it off the event loop.
        user = await asyncio.to_thread(gateway.store.authenticate, body.username, body.password)
    except AuthError as exc:
        remote = remote_of(request)
        gateway.store.audit(f"login:{body.username}", "", "login-failed", remote)
        if admission.last:
            log.warning(
                "failed sign-ins reached a limit (%r from %s): refused for a while", body.username, remote
            )
            gateway.store.audit(f"login:{body.username}", "", "login-throttled", remote)
        raise unauthorized(str(exc)) from None
    await throttle.succeeded(limits, admission)
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
