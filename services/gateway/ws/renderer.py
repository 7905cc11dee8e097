"""Rendering for one viewport, latest wins.

At most one Render call is in flight per viewport. A new view state replaces the pending one
(stale states are dropped, never queued); when the in-flight call yields its next rung and a newer
state is pending, the call is cancelled and the newest state is rendered. During a drag the user
thus sees a preview of a recent state at every step, and the ladder (full, lossless) only for the
view where they stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from voxcast.gateway.backends import RenderPool
from voxcast.gateway.errors import rpc_error
from voxcast.gateway.viewstate import ViewState

from voxcast.v1 import render_pb2

log = logging.getLogger(__name__)

RUNGS = {render_pb2.PREVIEW: "preview", render_pb2.FULL: "full", render_pb2.LOSSLESS: "lossless"}


def picture_header(frame: render_pb2.Frame) -> dict:
    """The frame header's fields about the picture itself (docs/protocol.md): rung, size, encoding,
    orientation labels, pixel size and, but for volume rendering, the window it was made with."""
    header = {
        "rung": RUNGS.get(frame.rung, "full"),
        "width": frame.width,
        "height": frame.height,
        "encoding": frame.encoding,
        "labels": {side: getattr(frame.labels, side) for side in ("top", "bottom", "left", "right")},
        "pixel_mm": frame.pixel_mm,
    }
    if frame.window_width > 0:
        header["window"] = [frame.window_center, frame.window_width]
    return header


FrameSink = Callable[[dict, bytes], None]
ErrorSink = Callable[[grpc.RpcError], None]


@dataclass(frozen=True)
class Job:
    state: ViewState
    lossless: bool | None
    received: float  # time.monotonic() when the change arrived


class ViewportRenderer:
    def __init__(
        self, viewport_id: str, render_key: str, pool: RenderPool, on_frame: FrameSink, on_error: ErrorSink
    ) -> None:
        self.viewport_id = viewport_id
        self.render_key = render_key  # unique across the render service's clients (it cancels by it)
        self._pool = pool
        self._on_frame = on_frame
        self._on_error = on_error
        self._pending: Job | None = None
        self._wake = asyncio.Event()
        self._sequence = 0
        self.renders_started = 0
        self._task = asyncio.create_task(self._run(), name=f"render {render_key}")

    def submit(self, state: ViewState, lossless: bool | None = None) -> None:
        self._pending = Job(state, lossless, time.monotonic())
        self._wake.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            job, self._pending = self._pending, None
            if job is None:
                continue
            await self._render(job)

    async def _render(self, job: Job) -> None:
        self.renders_started += 1
        request = job.state.render_request(self.render_key, job.lossless)
        sent = time.monotonic()
        try:
            async with contextlib.aclosing(self._pool.render(request)) as frames:
                async for frame in frames:
                    self._sequence += 1
                    now = time.monotonic()
                    header = {
                        "viewport": self.viewport_id,
                        "sequence": self._sequence,
                        "version": job.state.version,
                        **picture_header(frame),
                        "timings": {
                            "render_ms": round(frame.render_ms, 2),
                            "encode_ms": round(frame.encode_ms, 2),
                            "request_ms": round((now - sent) * 1000, 2),
                            "latency_ms": round((now - job.received) * 1000, 2),
                        },
                    }
                    self._on_frame(header, frame.data)
                    if self._pending is not None:
                        return  # a newer view is waiting: the rest of this ladder is stale
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._pending is not None:
                return
            self._on_error(exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("render of viewport %s failed", self.viewport_id)
            self._on_error(rpc_error(grpc.StatusCode.INTERNAL, "render failed"))
