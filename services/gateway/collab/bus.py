"""The session bus: where a session's state lives and how its changes reach every gateway replica.

A bus stores each session as flat fields plus a sequence number, and commits a change only when
the caller saw the latest sequence number (compare-and-set), publishing it in the same atomic step.
So changes are totally ordered per session and every subscriber receives them in that order.
The in-process bus serves one gateway; the Redis bus lets several replicas share sessions.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from voxcast.config import Settings


@dataclass(frozen=True)
class Snapshot:
    seq: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class Published:
    """A committed change: the event for participants and the patch of fields it made."""

    seq: int
    event: dict
    patch: dict[str, Any]


@dataclass(frozen=True)
class Resync:
    """Changes may have been missed (the bus reconnected, or a replica restored the session):
    reload the snapshot."""

    reason: str


BusMessage = Published | Resync


def encode_change(event: dict, patch: dict[str, Any]) -> str:
    return json.dumps({"event": event, "patch": patch}, separators=(",", ":"))


def decode_change(seq: int, payload: str | bytes) -> Published:
    data = json.loads(payload)
    return Published(seq, data["event"], data["patch"])


class Subscription:
    """The changes of one session, in order, for one local consumer (the session's room)."""

    def __init__(self, bus: Bus, session_id: str) -> None:
        self.bus = bus
        self.session_id = session_id
        self._queue: asyncio.Queue[BusMessage] = asyncio.Queue()
        self.closed = False

    def deliver(self, message: BusMessage) -> None:
        if not self.closed:
            self._queue.put_nowait(message)

    async def get(self) -> BusMessage:
        return await self._queue.get()

    async def __aiter__(self) -> AsyncIterator[BusMessage]:
        while not self.closed:
            yield await self._queue.get()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.bus._unsubscribe(self)


class Bus(ABC):
    """Where sessions live. Every method may raise BusUnavailable when the backing store is down."""

    @abstractmethod
    async def create(self, session_id: str, fields: dict[str, Any], ttl_s: float) -> bool:
        """Store a new session at sequence 0; False when the id is taken."""

    @abstractmethod
    async def load(self, session_id: str) -> Snapshot | None:
        """All fields and the sequence number, read atomically; None when absent or expired."""

    @abstractmethod
    async def current_seq(self, session_id: str) -> int | None:
        """The session's sequence number; None when absent."""

    @abstractmethod
    async def commit(
        self, session_id: str, expected_seq: int | None, event: dict, patch: dict[str, Any], ttl_s: float
    ) -> tuple[bool, int | None]:
        """Apply `patch` and publish it if the session is at `expected_seq` (None: whatever it is at,
        for changes that depend on nothing before them). Returns (True, new sequence number), or
        (False, the current one) when the session moved on meanwhile, or (False, None) when it is
        gone."""

    @abstractmethod
    async def restore(self, session_id: str, snapshot: Snapshot, ttl_s: float) -> bool:
        """Write `snapshot` back when the store lost the session or holds an older sequence."""

    @abstractmethod
    async def touch(self, session_id: str, ttl_s: float) -> bool:
        """Push the session's expiry back; False when the store no longer holds it."""

    @abstractmethod
    async def heartbeat(self, replica_id: str, ttl_s: float) -> None:
        """Say that the gateway replica `replica_id` is alive for the next ttl_s seconds."""

    @abstractmethod
    async def live_replicas(self, replica_ids: set[str]) -> set[str]:
        """Those of `replica_ids` whose heartbeat has not expired."""

    @abstractmethod
    async def put_blob(self, key: str, data: bytes, ttl_s: float) -> None:
        """Keep `data` under `key` (within the sessions' namespace) for ttl_s seconds."""

    @abstractmethod
    async def get_blob(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def subscribe(self, session_id: str) -> Subscription:
        """Changes committed from now on, in sequence order. Returns once the subscription is live."""

    @abstractmethod
    async def _unsubscribe(self, subscription: Subscription) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class InProcessBus(Bus):
    """Sessions in this process's memory: one gateway, no replicas. Changes apply synchronously,
    so a commit and its delivery to every subscriber happen in one step of the event loop."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[int, dict[str, Any], float]] = {}
        self._subs: dict[str, set[Subscription]] = {}
        self._replicas: dict[str, float] = {}
        self._blobs: dict[str, tuple[bytes, float]] = {}

    def _get(self, session_id: str) -> tuple[int, dict[str, Any], float] | None:
        entry = self._sessions.get(session_id)
        if entry is not None and entry[2] < time.monotonic():
            del self._sessions[session_id]
            return None
        return entry

    async def create(self, session_id, fields, ttl_s):
        if self._get(session_id) is not None:
            return False
        self._sessions[session_id] = (0, json.loads(json.dumps(fields)), time.monotonic() + ttl_s)
        return True

    async def load(self, session_id):
        entry = self._get(session_id)
        if entry is None:
            return None
        # A deep copy, as a store outside the process would give: callers never share our dicts.
        return Snapshot(entry[0], json.loads(json.dumps(entry[1])))

    async def current_seq(self, session_id):
        entry = self._get(session_id)
        return None if entry is None else entry[0]

    async def commit(self, session_id, expected_seq, event, patch, ttl_s):
        entry = self._get(session_id)
        if entry is None or (expected_seq is not None and entry[0] != expected_seq):
            return False, None if entry is None else entry[0]
        seq, fields = entry[0] + 1, entry[1]
        change = decode_change(seq, encode_change(event, patch))
        for key, value in change.patch.items():
            if value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
        self._sessions[session_id] = (seq, fields, time.monotonic() + ttl_s)
        for sub in self._subs.get(session_id, ()):
            sub.deliver(change)
        return True, seq

    async def restore(self, session_id, snapshot, ttl_s):
        entry = self._get(session_id)
        if entry is not None and entry[0] >= snapshot.seq:
            return False
        self._sessions[session_id] = (
            snapshot.seq,
            json.loads(json.dumps(snapshot.fields)),
            time.monotonic() + ttl_s,
        )
        return True

    async def touch(self, session_id, ttl_s):
        entry = self._get(session_id)
        if entry is None:
            return False
        self._sessions[session_id] = (entry[0], entry[1], time.monotonic() + ttl_s)
        return True

    async def heartbeat(self, replica_id, ttl_s):
        self._replicas[replica_id] = time.monotonic() + ttl_s

    async def live_replicas(self, replica_ids):
        now = time.monotonic()
        return {r for r in replica_ids if self._replicas.get(r, 0.0) > now}

    async def put_blob(self, key, data, ttl_s):
        self._blobs[key] = (bytes(data), time.monotonic() + ttl_s)

    async def get_blob(self, key):
        entry = self._blobs.get(key)
        if entry is None or entry[1] < time.monotonic():
            self._blobs.pop(key, None)
            return None
        return entry[0]

    async def subscribe(self, session_id):
        sub = Subscription(self, session_id)
        self._subs.setdefault(session_id, set()).add(sub)
        return sub

    async def _unsubscribe(self, subscription):
        subs = self._subs.get(subscription.session_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subs[subscription.session_id]

    async def close(self):
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()


def make_bus(settings: Settings) -> Bus:
    """The bus the settings ask for: Redis when VOXCAST_REDIS_URL is set, else in-process."""
    if settings.redis_url:
        from .redis_bus import RedisBus

        return RedisBus(settings.redis_url)
    return InProcessBus()
