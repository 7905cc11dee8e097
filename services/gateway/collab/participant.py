"""Who connects and their connection to a session: the identity, the bounded outbox of events,
the latest-wins frame slot, and the commands a participant sends."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .errors import InvalidCommand, SessionEnded
from .fanout import LatestFrames
from .invites import Grant
from .state import CLIENT_COMMANDS

if TYPE_CHECKING:
    from .room import Room


@dataclass(frozen=True)
class Identity:
    """Who connects: a signed-in user (participant id "u:<user id>") or a guest ("g:<random>")."""

    participant_id: str
    name: str
    kind: Literal["user", "guest"]
    admin: bool = False

    @classmethod
    def user(cls, user_id: str, name: str, *, admin: bool = False) -> Identity:
        return cls(f"u:{user_id}", name or user_id, "user", admin)

    @classmethod
    def guest(cls, grant: Grant, name: str) -> Identity:
        if grant.kind != "guest":
            raise InvalidCommand("this grant is not for a guest", field="token")
        return cls(grant.participant_id, name or "Guest", "guest")


class Outbox:
    """Events waiting for one connection. Bounded: past the bound the backlog is dropped and the
    connection is sent the whole state instead, so a stalled reader costs the others nothing."""

    def __init__(self, limit: int) -> None:
        self._items: deque[dict] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.needs_state = True  # the first message of every connection is the state
        self.closed_reason: str | None = None
        self.resyncs = 0

    def push(self, event: dict) -> None:
        if self.needs_state or self.closed_reason is not None:
            return
        if len(self._items) >= self._limit:
            self._items.clear()
            self.needs_state = True
            self.resyncs += 1
        else:
            self._items.append(event)
        self._ready.set()

    def reset(self) -> None:
        """Drop the backlog: the next message is the whole state."""
        self._items.clear()
        self.needs_state = True
        self._ready.set()

    def close(self, reason: str) -> None:
        """No more events after those queued; then the reader is told `reason`."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._ready.set()

    async def wait(self) -> None:
        while not self._items and not self.needs_state and self.closed_reason is None:
            self._ready.clear()
            await self._ready.wait()

    def pop(self) -> dict | None:
        return self._items.popleft() if self._items else None


@dataclass(eq=False)
class Participant:
    """One connection of a participant to a session (a person may have several)."""

    room: Room
    identity: Identity
    outbox: Outbox
    frames: LatestFrames = field(default_factory=LatestFrames)
    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    closed: bool = False
    # Added to this connection's state messages: what the gateway hands the person who connected
    # (a guest's access to the session's study).
    greeting: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.identity.participant_id

    @property
    def session_id(self) -> str:
        return self.room.session_id

    async def receive(self) -> dict:
        """The next message for this connection: {"type": "state", "you": <its participant id>, ...}
        first (and after a resync or a backlog overflow), then events in sequence order, each with
        its "seq". After the "ended" event, raises SessionEnded."""
        await self.outbox.wait()
        if self.outbox.needs_state:
            self.outbox.needs_state = False
            return {**self.room.state_message(), "you": self.id, **self.greeting}
        event = self.outbox.pop()
        if event is None:
            raise SessionEnded(self.outbox.closed_reason or "left the session")
        return event

    async def send(self, command: dict) -> dict:
        """Carry out a participant's command; returns its event (with "seq") or raises CollabError."""
        if self.closed:
            raise SessionEnded("this connection has left the session")
        kind = command.get("type") if isinstance(command, dict) else None
        if kind not in CLIENT_COMMANDS:
            raise InvalidCommand(f"unknown command type {kind!r}", field="type")
        if kind == "annotate":
            command = await self.room.measured(command)
        return await self.room.submit(self.id, command)

    async def invite(
        self,
        kind: Literal["user", "guest"],
        *,
        pin: str | None = None,
        may_control: bool = False,
        minutes: int = 240,
    ) -> str:
        """An invitation token into this session (owner, admin or presenter only)."""
        room = self.room
        return await room.hub.invite(
            room.session_id, self.identity, kind, pin=pin, may_control=may_control, minutes=minutes
        )

    async def leave(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.room.disconnect(self)
