"""The gateway's FastAPI application: wiring only (routers, WebSocket, static viewer, lifespan)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from voxcast.gateway.api import audit, auth, health, series, shares, studies, upload
from voxcast.gateway.auth.principal import Tokens
from voxcast.gateway.auth.store import Store
from voxcast.gateway.auth.throttle import SignInThrottle
from voxcast.gateway.backends import Backends
from voxcast.gateway.collab import route as session_route
from voxcast.gateway.context import Gateway
from voxcast.gateway.discovery import RenderDiscovery
from voxcast.gateway.ws import route as ws_route

from voxcast.config import Settings, get_settings

STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings | None = None, *, open_access: bool = False, discovery: RenderDiscovery | None = None
) -> FastAPI:
    settings = settings or get_settings()
    store = Store.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        backends = Backends(settings, discovery)
        backends.start()
        app.state.gateway = Gateway(settings, store, Tokens(settings, store), backends, open_access)
        app.state.throttle = SignInThrottle.from_settings(settings)
        try:
            yield
        finally:
            sessions = getattr(app.state, "sessions", None)
            if sessions is not None:
                await sessions.close()
            await backends.close()
            await app.state.throttle.close()

    app = FastAPI(
        title="voxcast gateway",
        version="1",
        description="Studies, series, thumbnails, upload, share links and the viewer's WebSocket (/ws, "
        "see docs/protocol.md) and shared sessions (/ws/session).",
        lifespan=lifespan,
    )
    api = APIRouter(prefix="/api")
    for module in (auth, health, studies, series, upload, shares, audit):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(ws_route.router)
    # Before the static mount: a mount at "/" also catches WebSocket paths.
    app.include_router(session_route.router)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="viewer")
    app.state.settings = settings
    return app


def server_config(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    """How uvicorn serves a gateway. WebSocket per-message deflate is off: frames are JPEG or PNG
    already, and deflating each one again for every participant of a session cost more CPU than
    all the rest of the fan-out, for no smaller message.

    X-Forwarded-For/-Proto are believed only from the proxies in VOXCAST_FORWARDED_ALLOW_IPS (none by
    default, not even loopback): the client address is what the sign-in throttle counts, and a header
    anyone may send must not choose it."""
    settings = getattr(app.state, "settings", None) or get_settings()
    trusted = settings.forwarded_allow_ips.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        ws_per_message_deflate=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
