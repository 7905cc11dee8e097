"""Latest-wins delivery to one WebSocket.

Frames and view-state events are kept in one slot per viewport: a newer one replaces an unsent
older one, so a slow client gets the newest picture, never a backlog. Other events (errors,
`opened`, `closed`...) go out in order. One writer task does all the sending.

A shared session fans a frame out by calling `frame()` on each participant's sender: a participant
on a slow link only ever overwrites its own slot and never slows the others down."""

from __future__ import annotations

import asyncio
import json
import struct
from collections import deque
from typing import Protocol

HEADER_LENGTH = struct.Struct(">I")
# Ordered events a client may leave unread before it is disconnected (it is not reading at all).
MAX_PENDING_EVENTS = 1024


def pack_frame(header: dict, data: bytes) -> bytes:
    """A binary frame: 4-byte big-endian header length, the UTF-8 JSON header, the image bytes."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return HEADER_LENGTH.pack(len(head)) + head + data


def unpack_frame(packet: bytes) -> tuple[dict, bytes]:
    (n,) = HEADER_LENGTH.unpack_from(packet)
    return json.loads(packet[4 : 4 + n]), packet[4 + n :]


class Transport(Protocol):
    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...


class SlowClient(Exception):
    pass


class FrameSender:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._events: deque[str] = deque()
        self._states: dict[str, str] = {}
        self._frames: dict[str, bytes] = {}
        self._wake = asyncio.Event()
        self.frames_sent = 0
        self.frames_replaced = 0  # frames dropped because a newer one came before they were sent
        self._closed = False

    def event(self, payload: dict) -> None:
        if self._closed:
            return
        if len(self._events) >= MAX_PENDING_EVENTS:
            raise SlowClient("the client stopped reading")
        self._events.append(json.dumps(payload, separators=(",", ":")))
        self._wake.set()

    def state(self, viewport: str, payload: dict) -> None:
        """A viewport's state event; replaces an unsent older one of the same viewport."""
        if self._closed:
            return
        self._states[viewport] = json.dumps(payload, separators=(",", ":"))
        self._wake.set()

    def frame(self, viewport: str, packet: bytes) -> None:
        if self._closed:
            return
        if viewport in self._frames:
            self.frames_replaced += 1
        self._frames[viewport] = packet
        self._wake.set()

    def forget(self, viewport: str) -> None:
        self._frames.pop(viewport, None)
        self._states.pop(viewport, None)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        """Send until closed; returns when the transport fails (the client went away)."""
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._events:
                await self._transport.send_text(self._events.popleft())
            # Events before the state and frame that follow them; a state before its frame.
            for viewport in list(self._states):
                text = self._states.pop(viewport, None)
                if text is not None:
                    await self._transport.send_text(text)
            for viewport in list(self._frames):
                packet = self._frames.pop(viewport, None)
                if packet is not None:
                    await self._transport.send_bytes(packet)
                    self.frames_sent += 1
                if self._events:
                    self._wake.set()
                    break
