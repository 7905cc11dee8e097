"""Series thumbnails: a small axial MPR through the middle of the volume, rendered by the render
service (its FULL rung) and kept in memory, most recently used first."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from voxcast.gateway.backends import RenderPool
from voxcast.gateway.viewstate import ViewState, VolumeBox

from voxcast.v1 import catalog_pb2, render_pb2

THUMBNAIL_PX = 128
CACHE_ENTRIES = 512


class ThumbnailCache:
    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._cache: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, series: catalog_pb2.Series, pool: RenderPool) -> tuple[bytes, str]:
        """(image bytes, media type) of a volume series' thumbnail."""
        key = series.series_uid
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent requests for one series render it once
            if key not in self._cache:
                self._cache[key] = await self._render(series, pool)
                while len(self._cache) > self._entries:
                    self._cache.popitem(last=False)
        self._locks.pop(key, None)
        return self._cache[key]

    @staticmethod
    async def _render(series: catalog_pb2.Series, pool: RenderPool) -> tuple[bytes, str]:
        state = ViewState.initial(
            series.series_uid, VolumeBox.from_proto(series.geometry), width=THUMBNAIL_PX, height=THUMBNAIL_PX
        )
        request = state.render_request(f"thumbnail:{series.series_uid}", lossless=False)
        best = None
        async with contextlib.aclosing(pool.render(request)) as frames:
            async for frame in frames:
                best = frame
                if frame.rung >= render_pb2.FULL:
                    break
        if best is None:
            raise RuntimeError("the render service sent no frame")
        return best.data, f"image/{best.encoding or 'jpeg'}"
