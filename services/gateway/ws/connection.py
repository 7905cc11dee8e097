"""One viewer WebSocket: authentication, then client messages changing per-viewport view states,
answered by latest-wins frames and events (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass

import grpc
from fastapi import WebSocket, WebSocketDisconnect
from voxcast.gateway.auth.principal import LOCAL_PRINCIPAL, Principal
from voxcast.gateway.auth.store import AuthError
from voxcast.gateway.collab.route import check_session_guest
from voxcast.gateway.context import Gateway
from voxcast.gateway.errors import (
    WS_1003_UNSUPPORTED_DATA,
    WS_1008_POLICY_VIOLATION,
    WS_1009_MESSAGE_TOO_BIG,
    WS_4401_UNAUTHORIZED,
    error_kind,
    grpc_message,
)
from voxcast.gateway.viewstate import ViewState, VolumeBox
from voxcast.gateway.ws import messages as m
from voxcast.gateway.ws.renderer import ViewportRenderer
from voxcast.gateway.ws.sender import FrameSender, SlowClient, pack_frame

from voxcast.v1 import catalog_pb2

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
MAX_MESSAGE_CHARS = 16 * 1024
MAX_VIEWPORTS = 16
PROTOCOL_VERSION = 1


class Refused(Exception):
    """A message the client may not send (wrong study for a share link...): an error event."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


@dataclass
class Viewport:
    state: ViewState
    renderer: ViewportRenderer
    study_uid: str


def apply_changes(state: ViewState, changes: m.ViewChanges) -> ViewState:
    """A new state with every change of a message, in the documented order."""
    c = changes
    if c.mode is not None and c.mode != state.mode:
        # Window presets and transfer-function presets are different sets: a new mode starts from
        # its own default unless the message names one.
        state = state.with_(mode=c.mode, preset="")
    if c.orientation is not None:
        state = state.reoriented(c.orientation)
    if c.size is not None and tuple(c.size) != (state.width, state.height):
        state = state.resized(*c.size)
    if c.center is not None:
        state = state.centered_at(c.center)
    if c.scroll:
        state = state.scrolled(c.scroll)
    if c.pan is not None:
        state = state.panned(c.pan.dx, c.pan.dy)
    if c.zoom is not None:
        state = state.zoomed(c.zoom)
    if c.rotate is not None:
        state = state.rotated(c.rotate.dx, c.rotate.dy)
    if c.window is not None:
        state = state.with_(window_center=c.window.center, window_width=c.window.width)
    if c.preset is not None:
        # A preset replaces a manual window.
        state = state.with_(preset=c.preset, window_center=0.0, window_width=0.0)
    simple = {
        name: getattr(c, name)
        for name in (
            "invert",
            "slab_mm",
            "slab_mode",
            "fusion_series_uid",
            "fusion_opacity",
            "fusion_colormap",
            "lossless",
        )
        if getattr(c, name) is not None
    }
    if simple:
        state = state.with_(**simple)
    return state


class ViewerConnection:
    def __init__(self, websocket: WebSocket, gateway: Gateway) -> None:
        self.ws = websocket
        self.gateway = gateway
        self.id = secrets.token_hex(6)
        self.sender = FrameSender(websocket)
        self.viewports: dict[str, Viewport] = {}
        self.principal: Principal | None = None
        self._audited: set[str] = set()
        client = websocket.client
        self.remote = f"{client.host}:{client.port}" if client else "unknown"

    # Entry point

    async def serve(self) -> None:
        await self.ws.accept()
        self.principal = await self._authenticate()
        if self.principal is None:
            return
        writer = asyncio.create_task(self.sender.run(), name=f"ws sender {self.id}")
        self.sender.event(
            {
                "type": "ready",
                "protocol": PROTOCOL_VERSION,
                "connection": self.id,
                "user": self.principal.public(),
            }
        )
        try:
            await self._receive_loop(writer)
        except (WebSocketDisconnect, SlowClient):
            pass
        finally:
            self.sender.close()
            for viewport in self.viewports.values():
                await viewport.renderer.close()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason[:120])

    async def _authenticate(self) -> Principal | None:
        if self.gateway.open_access:
            return LOCAL_PRINCIPAL
        token = self.ws.query_params.get("token")
        if not token:
            try:
                text = await asyncio.wait_for(self.ws.receive_text(), AUTH_TIMEOUT_S)
                message = m.parse(text)
            except TimeoutError:
                await self._close(WS_1008_POLICY_VIOLATION, "no auth message")
                return None
            except (m.BadMessage, KeyError, RuntimeError, WebSocketDisconnect):
                await self._close(WS_4401_UNAUTHORIZED, "the first message must be {type: auth, token}")
                return None
            if not isinstance(message, m.Auth):
                await self._close(WS_4401_UNAUTHORIZED, "the first message must be {type: auth, token}")
                return None
            token = message.token
        try:
            principal = self.gateway.tokens.principal(token)
            await check_session_guest(self.ws.app, principal)
            return principal
        except AuthError as exc:
            await self._close(WS_4401_UNAUTHORIZED, str(exc))
            return None

    async def _receive_loop(self, writer: asyncio.Task) -> None:
        receiver = None
        while True:
            receiver = asyncio.ensure_future(self.ws.receive())
            done, _ = await asyncio.wait({receiver, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done:  # the client went away while we were sending
                receiver.cancel()
                return
            message = receiver.result()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await self._close(WS_1003_UNSUPPORTED_DATA, "client messages are JSON text")
                return
            text = message.get("text") or ""
            if len(text) > MAX_MESSAGE_CHARS:
                await self._close(
                    WS_1009_MESSAGE_TOO_BIG, f"messages are at most {MAX_MESSAGE_CHARS} characters"
                )
                return
            await self._handle(text)

    # Messages

    def _error(self, code: str, field: str, message: str, viewport: str | None = None) -> None:
        event = {"type": "error", "code": code, "field": field, "message": message}
        if viewport:
            event["viewport"] = viewport
        self.sender.event(event)

    async def _handle(self, text: str) -> None:
        viewport = None
        try:
            message = m.parse(text)
            viewport = getattr(message, "viewport", None)
            if isinstance(message, m.Open):
                await self._open(message)
            elif isinstance(message, m.View):
                await self._view(message)
            elif isinstance(message, m.Lossless):
                vp = self._viewport(message.viewport)
                vp.renderer.submit(vp.state, lossless=True)
            elif isinstance(message, m.Close):
                await self._close_viewport(message.viewport)
            elif isinstance(message, m.Ping):
                self.sender.event({"type": "pong", "id": message.id, "time": time.time()})
            elif isinstance(message, m.Auth):
                raise Refused("invalid_argument", "type", "already authenticated")
        except m.BadMessage as exc:
            self._error("invalid_argument", exc.field, exc.message, exc.viewport)
        except Refused as exc:
            self._error(exc.code, exc.field, exc.message, viewport)
        except grpc.RpcError as exc:
            kind = error_kind(exc.code())
            if kind.ws_close is not None:
                await self._close(kind.ws_close, grpc_message(exc))
                raise WebSocketDisconnect(kind.ws_close) from None
            self._error(kind.code, "", grpc_message(exc), viewport)
        except ValueError as exc:
            self._error("invalid_argument", "", str(exc), viewport)

    def _viewport(self, viewport_id: str) -> Viewport:
        vp = self.viewports.get(viewport_id)
        if vp is None:
            raise Refused("not_found", "viewport", f"no open viewport {viewport_id!r}")
        return vp

    async def _series(self, series_uid: str, field: str) -> catalog_pb2.Series:
        try:
            series = await self.gateway.backends.catalog.GetSeries(
                catalog_pb2.GetSeriesRequest(series_uid=series_uid)
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise Refused("not_found", field, f"no series {series_uid}") from None
            raise
        assert self.principal is not None
        if not self.principal.may_see(series.study_uid):
            raise Refused("forbidden", field, "this link opens another study only")
        if not series.is_volume:
            raise Refused("failed_precondition", field, f"not a volume: {series.not_volume_reason}")
        return series

    async def _check_fusion(self, primary: catalog_pb2.Series | str, fusion_uid: str) -> None:
        if isinstance(primary, str):
            primary = await self._series(primary, "series_uid")
        fusion = await self._series(fusion_uid, "fusion_series_uid")
        if (
            fusion.study_uid != primary.study_uid
            and fusion.frame_of_reference_uid != primary.frame_of_reference_uid
        ):
            raise Refused(
                "invalid_argument", "fusion_series_uid", "fusion needs the same study or frame of reference"
            )

    def _audit(self, study_uid: str) -> None:
        if study_uid not in self._audited:
            self._audited.add(study_uid)
            assert self.principal is not None
            self.gateway.store.audit(self.principal.name, study_uid, "view", self.remote)

    async def _open(self, message: m.Open) -> None:
        assert self.principal is not None
        if self.principal.share_id is not None or self.principal.session_id is not None:
            # A link revoked, or a session ended, while its guest is connected stops this access
            # at the next open.
            try:
                if self.principal.share_id is not None:
                    self.gateway.store.live_share(self.principal.share_id)
                await check_session_guest(self.ws.app, self.principal)
            except AuthError as exc:
                await self._close(WS_4401_UNAUTHORIZED, str(exc))
                raise WebSocketDisconnect(WS_4401_UNAUTHORIZED) from None
        if message.viewport not in self.viewports and len(self.viewports) >= MAX_VIEWPORTS:
            raise Refused("invalid_argument", "viewport", f"at most {MAX_VIEWPORTS} viewports per connection")
        series = await self._series(message.series_uid, "series_uid")
        if message.fusion_series_uid:
            await self._check_fusion(series, message.fusion_series_uid)
        self._audit(series.study_uid)
        size = {"width": message.size[0], "height": message.size[1]} if message.size else {}
        base = ViewState.initial(series.series_uid, VolumeBox.from_proto(series.geometry), **size)
        state = apply_changes(base, message.model_copy(update={"size": None}))
        if message.viewport in self.viewports:
            await self._close_viewport(message.viewport, notify=False)
        renderer = ViewportRenderer(
            message.viewport,
            f"{self.id}/{message.viewport}",
            self.gateway.backends.render,
            on_frame=lambda header, data, vid=message.viewport: self.sender.frame(
                vid, pack_frame(header, data)
            ),
            on_error=lambda exc, vid=message.viewport: self._render_error(vid, exc),
        )
        self.viewports[message.viewport] = Viewport(state, renderer, series.study_uid)
        self.sender.event(
            {
                "type": "opened",
                "viewport": message.viewport,
                "series": {
                    "series_uid": series.series_uid,
                    "study_uid": series.study_uid,
                    "modality": series.modality,
                    "description": series.description,
                    "units": series.geometry.units,
                    "shape": list(series.geometry.shape),
                    "spacing_mm": list(series.geometry.spacing_mm),
                },
                "state": state.public(),
            }
        )
        renderer.submit(state)

    async def _view(self, message: m.View) -> None:
        vp = self._viewport(message.viewport)
        if message.fusion_series_uid:
            await self._check_fusion(vp.state.series_uid, message.fusion_series_uid)
        vp.state = apply_changes(vp.state, message)
        self.sender.state(
            message.viewport, {"type": "state", "viewport": message.viewport, "state": vp.state.public()}
        )
        vp.renderer.submit(vp.state)

    async def _close_viewport(self, viewport_id: str, notify: bool = True) -> None:
        vp = self._viewport(viewport_id)
        del self.viewports[viewport_id]
        await vp.renderer.close()
        self.sender.forget(viewport_id)
        if notify:
            self.sender.event({"type": "closed", "viewport": viewport_id})

    def _render_error(self, viewport_id: str, exc: grpc.RpcError) -> None:
        kind = error_kind(exc.code())
        self._error(kind.code, "", grpc_message(exc), viewport_id)
