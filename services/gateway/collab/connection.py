"""One WebSocket's membership in a session: the glue the gateway's /ws handler needs.

Session traffic shares the gateway's WebSocket with its own messages, so it is namespaced: every
message about the session is {"type": "session.<what>", ...}: the client sends "session.viewport",
"session.pointer", ... (a command of state.CLIENT_COMMANDS) and receives "session.state", then
"session.<event>" with consecutive "seq", and "session.error" for a refused command. Frames of the
session's viewports go out through the gateway's own frame encoder (`send_frame`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import CollabError, InvalidCommand, SessionEnded
from .participant import Participant

log = logging.getLogger(__name__)

PREFIX = "session."
SendJson = Callable[[dict], Awaitable[None]]
SendFrame = Callable[[str, Any], Awaitable[None]]  # (session viewport id, frame)


def is_session_message(message: dict) -> bool:
    return isinstance(message.get("type"), str) and message["type"].startswith(PREFIX)


def outgoing(message: dict) -> dict:
    """A session message as sent on the WebSocket."""
    return {**message, "type": PREFIX + message["type"]}


class SessionConnection:
    """Pumps a participant's events and frames out, and its commands in, until it leaves or the
    session ends. Slow sockets only delay themselves: events queue in the participant's bounded
    outbox and frames in its latest-wins slot."""

    def __init__(self, participant: Participant, send_json: SendJson, send_frame: SendFrame) -> None:
        self.participant = participant
        self._send_json = send_json
        self._send_frame = send_frame
        self._tasks = [
            asyncio.create_task(self._events(), name=f"voxcast-session-events-{participant.connection_id}"),
            asyncio.create_task(self._frames(), name=f"voxcast-session-frames-{participant.connection_id}"),
        ]

    async def _events(self) -> None:
        while True:
            try:
                message = await self.participant.receive()
            except SessionEnded:
                return
            await self._send_json(outgoing(message))

    async def _frames(self) -> None:
        while True:
            try:
                viewport_id, frame = await self.participant.frames.get()
            except EOFError:
                return
            await self._send_frame(viewport_id, frame)

    async def command(self, message: dict) -> None:
        """A "session.<command>" message from the client; a refusal goes back as "session.error"."""
        kind = message.get("type", "")
        command = {**message, "type": kind[len(PREFIX) :] if kind.startswith(PREFIX) else kind}
        try:
            if not kind.startswith(PREFIX):
                raise InvalidCommand(f"not a session message: {kind!r}", field="type")
            if command["type"] == "invite":
                token = await self.participant.invite(
                    command.get("kind", "user"),
                    pin=command.get("pin"),
                    may_control=bool(command.get("may_control", False)),
                )
                await self._send_json({"type": PREFIX + "invitation", "token": token})
            else:
                await self.participant.send(command)
        except CollabError as exc:
            await self._send_json(outgoing(exc.to_message()))

    async def wait(self) -> None:
        """Returns when the session has ended for this connection (its last event sent)."""
        await self._tasks[0]

    async def close(self) -> None:
        """The WebSocket closed, or the client left the session."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.participant.leave()
        except CollabError as exc:
            log.warning("leaving session %s: %s", self.participant.session_id, exc)
