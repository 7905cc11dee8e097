"""The volume cache: prepared volumes kept in an LRU bounded by bytes, loaded once.

A miss calls the loader (fetch from the catalog, then prepare for the backend); concurrent
requests for a volume being loaded wait for that one load (single flight). A load that fails
is not remembered: the next request tries again (the catalog may be back).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

from .errors import TooLarge
from .metrics import RenderMetrics


class Sized(Protocol):
    nbytes: int


T = TypeVar("T", bound=Sized)


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


class VolumeCache:
    def __init__(
        self,
        limit_bytes: int,
        load: Callable[[str], T],
        metrics: RenderMetrics | None = None,
        after_evict: Callable[[], None] | None = None,
    ) -> None:
        self.limit_bytes = int(limit_bytes)
        self._load = load
        # Called once evicted volumes are no longer referenced here (a GPU pool can release them).
        self._after_evict = after_evict
        self._metrics = metrics or RenderMetrics()
        self._metrics.cache_limit.set(self.limit_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, T] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._bytes = 0
        self.loads = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def get(self, key: str) -> T:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._metrics.cache_hits.inc()
                return entry
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                self._metrics.cache_misses.inc()
                self.loads += 1
            else:
                # Waiting for someone else's load is a hit on the work already under way.
                self._metrics.cache_hits.inc()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = self._load(key)
            self._insert(key, value)
            flight.value = value
            return value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _insert(self, key: str, value: T) -> None:
        size = int(value.nbytes)
        if size > self.limit_bytes:
            raise TooLarge(
                f"series {key} needs {size / 2**20:.0f} MiB prepared, more than the render cache bound "
                f"of {self.limit_bytes / 2**20:.0f} MiB (VOXCAST_RENDER_CACHE_MB)"
            )
        evicted = 0
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            self._entries[key] = value
            self._bytes += size
            while self._bytes > self.limit_bytes:
                _, victim = self._entries.popitem(last=False)
                self._bytes -= int(victim.nbytes)
                evicted += 1
            victim = None  # noqa: F841 - drop the last reference before after_evict runs
            self._publish()
        if evicted:
            self._metrics.cache_evictions.inc(evicted)
            if self._after_evict is not None:
                self._after_evict()

    def _publish(self) -> None:
        self._metrics.cache_bytes.set(self._bytes)
        self._metrics.cache_volumes.set(len(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._publish()
        if self._after_evict is not None:
            self._after_evict()
