"""Sign-in and the current principal."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from voxcast.gateway.api.deps import GatewayDep, PrincipalDep, unauthorized
from voxcast.gateway.api.schemas import ERRORS as ERRORS_AUTH
from voxcast.gateway.api.schemas import AuthMode, LoginRequest, PrincipalOut, TokenOut
from voxcast.gateway.auth.store import AuthError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut, responses=ERRORS_AUTH)
async def login(body: LoginRequest, gateway: GatewayDep) -> TokenOut:
    """Exchange a username and password for a short-lived access token (Bearer, and `token` for /ws)."""
    try:
        # argon2 is deliberately slow: keep it off the event loop.
        user = await asyncio.to_thread(gateway.store.authenticate, body.username, body.password)
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
