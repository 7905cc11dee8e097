"""The Redis bus: one hash per session (fields as JSON, plus `_seq`) with an expiry, and one
pub/sub channel per session carrying each committed change prefixed by its sequence number.

A commit is one Lua script: check the sequence number, apply the patch, bump the number, refresh
the expiry and PUBLISH, atomically; so the channel carries changes in sequence order to every
replica. One pub/sub connection per bus serves all its sessions. When Redis goes away the bus keeps
its local subscriptions, reconnects with backoff, resubscribes and tells each subscription to
resync; a Redis that came back empty gets the sessions restored from the replicas' copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .bus import Bus, Resync, Snapshot, Subscription, decode_change, encode_change
from .errors import BusUnavailable

log = logging.getLogger(__name__)

KEY_PREFIX = "voxcast:collab:"
SEQ_FIELD = "_seq"
RESTORE_MARK = "restore"
DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

# KEYS[1] hash; ARGV: expected seq ('' = any), ttl ms, channel, payload, number of deletions,
# deleted fields..., then field/value pairs to set.
COMMIT_LUA = """
local cur = redis.call('HGET', KEYS[1], '_seq')
if not cur then return {0, -1} end
if ARGV[1] ~= '' and tonumber(cur) ~= tonumber(ARGV[1]) then return {0, tonumber(cur)} end
local seq = tonumber(cur) + 1
redis.call('HSET', KEYS[1], '_seq', seq)
local ndel = tonumber(ARGV[5])
for i = 6, 5 + ndel do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 6 + ndel, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], seq .. '|' .. ARGV[4])
return {1, seq}
"""

# KEYS[1] hash; ARGV: seq, ttl ms, channel, mode ("create" or "restore"), then field/value pairs.
WRITE_LUA = """
local cur = redis.call('HGET', KEYS[1], '_seq')
if ARGV[4] == 'create' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[4] == 'restore' and cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_seq', ARGV[1])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[4] == 'restore' then redis.call('PUBLISH', ARGV[3], ARGV[1] .. '|restore') end
return 1
"""


def _key(session_id: str) -> str:
    return f"{KEY_PREFIX}{{{session_id}}}"


def _channel(session_id: str) -> str:
    return f"{KEY_PREFIX}{{{session_id}}}:changes"


def _ms(ttl_s: float) -> int:
    return max(1, int(ttl_s * 1000))


def _dump(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class RedisBus(Bus):
    def __init__(self, url: str, *, reconnect_max_s: float = 1.0, connect_wait_s: float = 2.0) -> None:
        # Commands fail fast instead of retrying inside redis-py: the caller (a participant's
        # command) gets BusUnavailable at once and the reader below owns reconnection.
        options = dict(decode_responses=True, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0)
        self._client = aioredis.Redis.from_url(url, socket_timeout=5.0, **options)
        self._pubsub_client = aioredis.Redis.from_url(url, **options)
        # Frames are bytes: a client that does not decode them.
        self._blob_client = aioredis.Redis.from_url(
            url, socket_timeout=5.0, **{**options, "decode_responses": False}
        )
        self._commit_script = self._client.register_script(COMMIT_LUA)
        self._write_script = self._client.register_script(WRITE_LUA)
        self._subs: dict[str, set[Subscription]] = {}
        self._confirmations: dict[str, list[asyncio.Future]] = {}
        self._resync_pending: set[str] = set()
        self._pubsub = None
        self._connected = asyncio.Event()
        self._reconnect_max_s = reconnect_max_s
        self._connect_wait_s = connect_wait_s
        self._reader: asyncio.Task | None = None
        self._closing = False
        self.reconnects = 0

    # -- state ------------------------------------------------------------------------------------

    async def _call(self, coro):
        try:
            return await coro
        except DOWN_ERRORS as exc:
            raise BusUnavailable(f"the session store (Redis) is unreachable: {exc}") from exc

    async def create(self, session_id, fields, ttl_s):
        return bool(await self._write(session_id, Snapshot(0, fields), ttl_s, "create"))

    async def restore(self, session_id, snapshot, ttl_s):
        return bool(await self._write(session_id, snapshot, ttl_s, "restore"))

    async def _write(self, session_id, snapshot, ttl_s, mode):
        args = [snapshot.seq, _ms(ttl_s), _channel(session_id), mode]
        for name, value in snapshot.fields.items():
            args += [name, _dump(value)]
        return await self._call(self._write_script(keys=[_key(session_id)], args=args))

    async def load(self, session_id):
        raw = await self._call(self._client.hgetall(_key(session_id)))
        if not raw or SEQ_FIELD not in raw:
            return None
        seq = int(raw.pop(SEQ_FIELD))
        return Snapshot(seq, {k: json.loads(v) for k, v in raw.items()})

    async def current_seq(self, session_id):
        seq = await self._call(self._client.hget(_key(session_id), SEQ_FIELD))
        return None if seq is None else int(seq)

    async def commit(self, session_id, expected_seq, event, patch, ttl_s):
        deletions = [k for k, v in patch.items() if v is None]
        expected = "" if expected_seq is None else expected_seq
        args = [expected, _ms(ttl_s), _channel(session_id), encode_change(event, patch), len(deletions)]
        args += deletions
        for name, value in patch.items():
            if value is not None:
                args += [name, _dump(value)]
        ok, seq = await self._call(self._commit_script(keys=[_key(session_id)], args=args))
        return bool(ok), None if seq < 0 else int(seq)

    async def touch(self, session_id, ttl_s):
        return bool(await self._call(self._client.pexpire(_key(session_id), _ms(ttl_s))))

    async def heartbeat(self, replica_id, ttl_s):
        await self._call(self._client.set(f"{KEY_PREFIX}replica:{replica_id}", "1", px=_ms(ttl_s)))

    async def live_replicas(self, replica_ids):
        ids = sorted(replica_ids)
        if not ids:
            return set()
        values = await self._call(self._client.mget([f"{KEY_PREFIX}replica:{r}" for r in ids]))
        return {r for r, v in zip(ids, values, strict=True) if v is not None}

    async def put_blob(self, key, data, ttl_s):
        await self._call(self._blob_client.set(f"{KEY_PREFIX}blob:{key}", data, px=_ms(ttl_s)))

    async def get_blob(self, key):
        return await self._call(self._blob_client.get(f"{KEY_PREFIX}blob:{key}"))

    # -- changes ----------------------------------------------------------------------------------

    async def subscribe(self, session_id):
        self._ensure_reader()
        channel = _channel(session_id)
        sub = Subscription(self, session_id)
        first = session_id not in self._subs
        self._subs.setdefault(session_id, set()).add(sub)
        if not first:
            return sub
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_s)
            pubsub = self._pubsub
            if pubsub is None:
                raise RedisConnectionError("the pub/sub connection is being re-established")
            confirmed = asyncio.get_running_loop().create_future()
            self._confirmations.setdefault(channel, []).append(confirmed)
            await pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, self._connect_wait_s)
        except (TimeoutError, *DOWN_ERRORS) as exc:
            # The reader subscribes every known channel when it reconnects and then asks for a resync.
            log.warning("subscribing to session %s while Redis is down: %s", session_id, exc)
        return sub

    async def _unsubscribe(self, subscription):
        subs = self._subs.get(subscription.session_id)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._subs[subscription.session_id]
            if self._pubsub is not None and self._connected.is_set():
                with contextlib.suppress(*DOWN_ERRORS):
                    await self._pubsub.unsubscribe(_channel(subscription.session_id))

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name="voxcast-collab-redis-reader")

    async def _read_forever(self) -> None:
        backoff = 0.05
        first = True
        while not self._closing:
            pubsub = self._pubsub_client.pubsub()
            try:
                channels = [_channel(s) for s in self._subs]
                if not first:
                    self._resync_pending = set(channels)
                # A control channel keeps the connection subscribed even with no session open.
                await pubsub.subscribe(f"{KEY_PREFIX}control", *channels)
                self._pubsub = pubsub
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    log.info("reconnected to Redis; resynchronising %d session(s)", len(channels))
                first = False
                backoff = 0.05
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        await pubsub.ping()  # notices a dead connection even when all is quiet
                        continue
                    try:
                        self._dispatch(message)
                    except Exception:
                        log.exception("unreadable message on %s", message.get("channel"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Connection errors, and anything unexpected: never leave the sessions without a reader.
                if isinstance(exc, DOWN_ERRORS):
                    if self._connected.is_set():
                        log.warning("lost Redis (%s); reconnecting", exc)
                else:
                    log.exception("Redis pub/sub reader failed; reconnecting")
                self._connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._reconnect_max_s)
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, message: dict) -> None:
        channel = message.get("channel")
        if message["type"] == "subscribe":
            for fut in self._confirmations.pop(channel, []):
                if not fut.done():
                    fut.set_result(True)
            if channel in self._resync_pending:
                self._resync_pending.discard(channel)
                self._deliver(channel, Resync("reconnected"))
            return
        if message["type"] != "message":
            return
        seq_text, _, payload = message["data"].partition("|")
        if payload == RESTORE_MARK:
            self._deliver(channel, Resync("restored"))
        else:
            self._deliver(channel, decode_change(int(seq_text), payload))

    def _deliver(self, channel: str, item) -> None:
        session_id = channel[len(KEY_PREFIX) + 1 : -len("}:changes")]
        for sub in list(self._subs.get(session_id, ())):
            sub.deliver(item)

    async def close(self):
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.closed = True
        self._subs.clear()
        await self._client.aclose()
        await self._pubsub_client.aclose()
        await self._blob_client.aclose()
