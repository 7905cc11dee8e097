"""The /ws endpoint."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from voxcast.gateway.ws.connection import ViewerConnection

router = APIRouter()


@router.websocket("/ws")
async def viewer_socket(websocket: WebSocket) -> None:
    """The viewer's stream (docs/protocol.md). Token in the `token` query parameter or a first
    `{"type": "auth", "token": ...}` message."""
    await ViewerConnection(websocket, websocket.app.state.gateway).serve()
