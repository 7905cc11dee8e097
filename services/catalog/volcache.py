"""A small in-memory LRU of assembled volumes, bounded in bytes.

Decoding a 512x512x400 CT takes seconds; render replicas and viewers often ask for the same series
again. An entry is keyed by the series and its instance count, so an instance arriving later makes
the old entry unreachable (it ages out). Cached voxels are read-only: every caller shares them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from voxcast.volume import Volume

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


class VolumeCache:
    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, int], Volume] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, series_uid: str, num_instances: int) -> Volume | None:
        with self._lock:
            volume = self._entries.get((series_uid, num_instances))
            if volume is not None:
                self._entries.move_to_end((series_uid, num_instances))
            return volume

    def put(self, series_uid: str, num_instances: int, volume: Volume) -> None:
        size = volume.voxels.nbytes
        if size > self.max_bytes:
            return
        volume.voxels.flags.writeable = False
        with self._lock:
            old = self._entries.pop((series_uid, num_instances), None)
            if old is not None:
                self._bytes -= old.voxels.nbytes
            self._entries[(series_uid, num_instances)] = volume
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.voxels.nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes
