"""The session WebSocket, /ws/session: the gateway's seam to shared sessions.

Query parameters: `token` (the gateway's access token; not needed for a guest with an invitation),
`study` (start a session on this study; the caller becomes its owner) or `session` (join one), and
to join: `invite` (an invitation token), `pin` (a guest's PIN), `name` (a guest's display name).
Messages are those of collab.connection: "session.<command>" in, "session.<event>" out; frames of
the session's viewports are binary, packed like /ws frames (4-byte header length, JSON header, image).
The hub is made on first use from the gateway's settings and backends (VOXCAST_REDIS_URL chooses the
bus) and kept in app.state.sessions.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from voxcast.gateway.auth.principal import GUEST, LOCAL_PRINCIPAL, Principal
from voxcast.gateway.auth.store import AuthError
from voxcast.gateway.errors import WS_1008_POLICY_VIOLATION, WS_4401_UNAUTHORIZED

from voxcast.v1 import catalog_pb2

from .connection import SessionConnection, outgoing
from .errors import BusUnavailable, CollabError, PermissionDenied, SessionNotFound
from .hub import SessionHub
from .participant import Identity
from .rendering import FRAME_CODEC, request_renderer
from .volumes import catalog_volume_loader

log = logging.getLogger(__name__)
router = APIRouter()
_hub_lock = asyncio.Lock()


async def hub_for(app) -> SessionHub:
    """The app's SessionHub, made on first use (close it with `await app.state.sessions.close()`)."""
    async with _hub_lock:
        hub = getattr(app.state, "sessions", None)
        if hub is None:
            gateway = app.state.gateway
            hub = SessionHub.from_settings(
                gateway.settings,
                renderer=request_renderer(gateway.backends.render.render),
                frame_codec=FRAME_CODEC,
                volume_loader=catalog_volume_loader(gateway.settings.catalog_addr),
            )
            app.state.sessions = hub
        return hub


async def check_session_guest(app, principal: Principal) -> None:
    """A session guest's access (REST and /ws on the session's study) lasts as long as the session:
    AuthError once it has ended or expired. While the bus cannot answer, the signed and unexpired
    token stands: a moment without Redis must not sign a tumor board's guests out."""
    if principal.session_id is None:
        return
    hub = await hub_for(app)
    try:
        state = await hub.state(principal.session_id)
    except SessionNotFound:
        state = None
    except BusUnavailable as exc:
        log.warning("session %s not checked for a guest: %s", principal.session_id, exc)
        return
    if state is None or state.ended:
        raise AuthError("the session this access came with has ended")


async def _identity(websocket: WebSocket, hub: SessionHub):
    """(identity, grant, greeting) of the caller, or None after closing the socket. The greeting
    goes into the caller's session.state: for a guest an invitation admitted, their access token."""
    gateway, params = websocket.app.state.gateway, websocket.query_params
    token, invite, pin = params.get("token"), params.get("invite"), params.get("pin")
    if not token and invite and not gateway.open_access:
        grant = await hub.redeem(invite, pin=pin)
        identity = Identity.guest(grant, guest_name(params.get("name", "")))
        access = _access(gateway, identity, grant.session_id, grant.study_uid, grant.expires_at, None)
        return identity, grant, access
    try:
        principal = LOCAL_PRINCIPAL if gateway.open_access else gateway.tokens.principal(token or "")
        # An ended session's guest token is no way into this session or any other.
        await check_session_guest(websocket.app, principal)
    except AuthError as exc:
        await websocket.close(WS_4401_UNAUTHORIZED, str(exc))
        return None
    if principal.is_guest:
        if invite:
            # A share link's guest (or a session's) may take an invitation into their own study.
            grant = await hub.redeem(invite, pin=pin, guest_of=principal.study_uid)
            identity = Identity.guest(grant, guest_name(params.get("name", "") or principal.display))
            return (
                identity,
                grant,
                _access(gateway, identity, grant.session_id, grant.study_uid, grant.expires_at, principal),
            )
        if principal.session_id is None or principal.session_id != params.get("session"):
            raise PermissionDenied("a guest joins a session with its invitation", field="invite")
        # Back in the session: a fresh token, which still ends with the invitation (and the link).
        identity = Identity(principal.participant_id, principal.display, "guest")
        return (
            identity,
            None,
            _access(
                gateway,
                identity,
                principal.session_id,
                principal.study_uid,
                principal.access_until,
                principal,
            ),
        )
    who = str(principal.user_id) if principal.user_id is not None else principal.name
    identity = Identity.user(who, principal.display or principal.name, admin=principal.is_admin)
    grant = await hub.redeem(invite, pin=pin, user=identity) if invite else None
    return identity, grant, {}


def guest_name(name: str) -> str:
    """A guest's name as others will read it: no control or format characters (which could
    reorder what is shown), spaces collapsed, at most 80 characters."""
    visible = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    return " ".join(visible.split())[:80]


def _access(
    gateway, identity: Identity, session_id: str, study_uid: str, until: float, came_with: Principal | None
) -> dict:
    """The greeting that gives a guest their access token to the session's study and back into the
    session; it ends with the invitation (`until`) and with the share link the guest came with."""
    share_id = came_with.share_id if came_with is not None else None
    share = gateway.store.live_share(share_id) if share_id is not None else None
    token = gateway.tokens.for_session_guest(
        session_id, study_uid, identity.participant_id, identity.name, until, share
    )
    user = {"name": identity.name, "role": GUEST, "study_uid": study_uid}
    return {"access": {"token": token, "user": user}}


@router.websocket("/ws/session")
async def session_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    hub = await hub_for(websocket.app)
    gateway, params = websocket.app.state.gateway, websocket.query_params
    try:
        admitted = await _identity(websocket, hub)
        if admitted is None:
            return
        identity, grant, greeting = admitted
        session_id = params.get("session")
        if not session_id:
            study = params.get("study", "")
            listed = await gateway.backends.catalog.ListSeries(catalog_pb2.ListSeriesRequest(study_uid=study))
            series = [s.series_uid for s in listed.series if s.is_volume]
            session_id = await hub.create_session(identity, study, series)
        participant = await hub.join(session_id, identity, grant)
        participant.greeting = greeting
    except CollabError as exc:
        await websocket.send_json(outgoing(exc.to_message()))
        await websocket.close(WS_1008_POLICY_VIOLATION, exc.message[:120])
        return

    async def send_frame(viewport_id: str, packet) -> None:
        await websocket.send_bytes(packet.data)

    connection = SessionConnection(participant, websocket.send_json, send_frame)
    try:
        while True:
            await connection.command(await websocket.receive_json())
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        await connection.close()
