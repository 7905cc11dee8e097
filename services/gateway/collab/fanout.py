"""Frames rendered once per session viewport in this gateway, fanned out to the local followers.

Each participant connection has a LatestFrames: per viewport, only the newest frame waits to be
sent, so a participant on a slow link skips to the newest frame and never holds anyone else up.
Each viewport of a session has one ViewportFeed per gateway: a new view state cancels the render in
flight (latest wins) and starts one render, whose frames go to every follower; the last frame of
each completed ladder (the settled one) is kept for late joiners and participants who re-follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

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


class ViewportFeed:
    """One render stream for one session viewport in this gateway."""

    def __init__(self, session_id: str, viewport_id: str, renderer: Renderer) -> None:
        self.session_id = session_id
        self.viewport_id = viewport_id
        self._renderer = renderer
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
        self.renders += 1
        last = None
        try:
            async for frame in self._renderer(self.session_id, self.viewport_id, state):
                last = frame
                self.frames += 1
                for sink in list(self._sinks):
                    sink.put(self.viewport_id, frame)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rendering viewport %s failed", self.viewport_id)
            return
        if last is not None:
            self.settled = last

    async def close(self) -> None:
        self._sinks.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
