"""Consistent hashing of series onto render services, so a series' volume stays cached on one of them."""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import Iterable, Iterator

# Points per address on the ring: enough that removing one address spreads its series evenly.
VIRTUAL_NODES = 64


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Maps a key (a series UID) to an ordered list of addresses: the owner first, then the fallbacks.

    The ring is rebuilt with `update` when discovery reports a new set of addresses; only the keys
    of an added or removed address move."""

    def __init__(self, addresses: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._points: list[int] = []
        self._owners: list[str] = []
        self._addresses: tuple[str, ...] = ()
        self.update(addresses)

    @property
    def addresses(self) -> tuple[str, ...]:
        return self._addresses

    def update(self, addresses: Iterable[str]) -> None:
        unique = tuple(sorted(set(addresses)))
        pairs = sorted((_hash(f"{address}#{i}"), address) for address in unique for i in range(VIRTUAL_NODES))
        with self._lock:
            self._points = [p for p, _ in pairs]
            self._owners = [a for _, a in pairs]
            self._addresses = unique

    def candidates(self, key: str) -> Iterator[str]:
        """Every address once, in ring order starting at the key's owner."""
        with self._lock:
            points, owners, count = self._points, self._owners, len(self._addresses)
        if not points:
            return
        start = bisect.bisect(points, _hash(key)) % len(points)
        seen: set[str] = set()
        for i in range(len(points)):
            address = owners[(start + i) % len(points)]
            if address not in seen:
                seen.add(address)
                yield address
                if len(seen) == count:
                    return

    def owner(self, key: str) -> str | None:
        return next(self.candidates(key), None)
