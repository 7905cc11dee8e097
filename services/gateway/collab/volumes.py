"""Volumes for server-side measurements, fetched from the catalog (FetchVolume) and kept for the
few series a session measures on, so a second ROI on the same series costs no transfer."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from voxcast.volume import Volume

from .hub import VolumeLoader


def catalog_volume_loader(catalog_addr: str, keep: int = 2) -> VolumeLoader:
    """A VolumeLoader over the catalog at `catalog_addr`, keeping the `keep` last volumes."""
    from voxcast.catalog.client import CatalogClient

    cache: OrderedDict[str, Volume] = OrderedDict()
    lock = asyncio.Lock()

    def fetch(series_uid: str) -> Volume:
        with CatalogClient(catalog_addr) as client:
            return client.fetch_volume(series_uid)

    async def load(series_uid: str) -> Volume:
        async with lock:  # one transfer at a time: two ROIs on a new series fetch it once
            volume = cache.get(series_uid)
            if volume is None:
                volume = await asyncio.to_thread(fetch, series_uid)
                cache[series_uid] = volume
                while len(cache) > keep:
                    cache.popitem(last=False)
            cache.move_to_end(series_uid)
            return volume

    return load
