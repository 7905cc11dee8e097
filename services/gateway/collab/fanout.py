"""Frames rendered once per session viewport in this gateway, fanned out to the local followers.

Each participant connection has a LatestFrames: per viewport, only the newest frame waits to be
sent, so a participant on a slow link skips to the newest frame and never holds anyone else up.
Each viewport of a session has one ViewportFeed per gateway: a new view state cancels the render in
flight (latest wins) and starts one render, whose frames go to every follower; the last frame of
each completed ladder (the settled one) is kept for late joiners and participants who re-follow,
and, with a SettledFrames store, shared through the bus with the other replicas: a replica that
gets a view state whose settled frame is already there sends it without rendering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BusUnavailable

if TYPE_CHECKING:
    from .bus import Bus

log = logging.getLogger(__name__)

# The gateway's render call: (session id, viewport id, viewport state as in models.ViewportState)
# -> frames, the progressive ladder of one view (preview ... lossless), ending once it has settled.
Renderer = Callable[[str, str, dict], AsyncIterator[Any]]


class LatestFrames:
    """Frames waiting to go to one participant: the newest per viewport, older ones dropped."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] = {}
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, viewport_id: str, frame: Any) -> None:
        if self.closed:
            return
        if viewport_id in self._pending:
            self.dropped += 1
        self._pending[viewport_id] = frame
        self._ready.set()

    async def get(self) -> tuple[str, Any]:
        """The next (viewport id, frame) to send; waits while none is pending."""
        while not self._pending:
            if self.closed:
                raise EOFError("frames closed")
            self._ready.clear()
            await self._ready.wait()
        viewport_id = next(iter(self._pending))
        return viewport_id, self._pending.pop(viewport_id)

    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        self.closed = True
        self._pending.clear()
        self._ready.set()


@dataclass(frozen=True)
class FrameCodec:
    """How the renderer's frames become bytes for the bus, and back."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


class SettledFrames:
    """The settled frame of each viewport of one session, with the view state it shows, kept in
    the bus for the replicas that join later."""

    def __init__(self, bus: Bus, session_id: str, codec: FrameCodec, ttl_s: float) -> None:
        self._bus = bus
        self._session_id = session_id
        self._codec = codec
        self._ttl_s = ttl_s

    def _key(self, viewport_id: str) -> str:
        # Named for what is stored (WebSocket packets since they replaced protobuf frames), so
        # replicas of two versions during a rolling upgrade never read each other's blobs.
        return f"packet:{{{self._session_id}}}:{viewport_id}"

    @staticmethod
    def _view_key(state: dict) -> bytes:
        return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()

    async def save(self, viewport_id: str, state: dict, frame: Any) -> None:
        view = self._view_key(state)
        data = struct.pack(">I", len(view)) + view + self._codec.encode(frame)
        await self._bus.put_blob(self._key(viewport_id), data, self._ttl_s)

    async def load(self, viewport_id: str, state: dict) -> Any | None:
        """The settled frame of exactly this view state, if a replica has one."""
        data = await self._bus.get_blob(self._key(viewport_id))
        if data is None or len(data) < 4:
            return None
        (n,) = struct.unpack(">I", data[:4])
        if data[4 : 4 + n] != self._view_key(state):
            return None
        try:
            return self._codec.decode(data[4 + n :])
        except Exception:  # noqa: BLE001 - whatever a codec raises, a frame that cannot be read is a miss
            log.warning("unreadable settled frame of %s/%s: rendered again", self._session_id, viewport_id)
            return None


class ViewportFeed:
    """One render stream for one session viewport in this gateway."""

    def __init__(
        self, session_id: str, viewport_id: str, renderer: Renderer, shared: SettledFrames | None = None
    ) -> None:
        self.session_id = session_id
        self.viewport_id = viewport_id
        self._renderer = renderer
        self._shared = shared
        self._sinks: set[LatestFrames] = set()
        self._state: dict | None = None
        self._task: asyncio.Task | None = None
        self.settled: Any = None
        self.renders = 0
        self.frames = 0

    def attach(self, sink: LatestFrames) -> None:
        self._sinks.add(sink)
        if self.settled is not None:
            sink.put(self.viewport_id, self.settled)

    def __contains__(self, sink: LatestFrames) -> bool:
        return sink in self._sinks

    def detach(self, sink: LatestFrames) -> None:
        self._sinks.discard(sink)

    @property
    def followers(self) -> int:
        return len(self._sinks)

    def show(self, state: dict) -> None:
        """Render `state` unless it is what is already shown; cancels an older render in flight."""
        if state == self._state:
            return
        self._state = state
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._render(state), name=f"voxcast-feed-{self.viewport_id}")

    async def _render(self, state: dict) -> None:
        if self._shared is not None:
            frame = await self._shared_frame(state)
            if frame is not None:
                self._deliver(frame)
                self.settled = frame
                return
        self.renders += 1
        last = None
        try:
            async for frame in self._renderer(self.session_id, self.viewport_id, state):
                last = frame
                self._deliver(frame)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rendering viewport %s failed", self.viewport_id)
            return
        if last is not None:
            self.settled = last
            if self._shared is not None:
                try:
                    await self._shared.save(self.viewport_id, state, last)
                except BusUnavailable as exc:
                    log.warning("settled frame of %s not shared: %s", self.viewport_id, exc)

    async def _shared_frame(self, state: dict) -> Any | None:
        try:
            return await self._shared.load(self.viewport_id, state)
        except BusUnavailable as exc:
            log.warning("no shared settled frame for %s: %s", self.viewport_id, exc)
            return None

    def _deliver(self, frame: Any) -> None:
        self.frames += 1
        for sink in list(self._sinks):
            sink.put(self.viewport_id, frame)

    async def close(self) -> None:
        self._sinks.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
