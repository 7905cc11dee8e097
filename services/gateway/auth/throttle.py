"""Throttling of password and PIN guessing: failed sign-ins per username from one client address, per
username from everywhere (a much higher ceiling) and per client address; wrong share-link PINs per
link and per client address; each counted over a fixed window.

A username's own limit counts per address, so wrong passwords sent from elsewhere cannot lock its
owner out; the username-wide ceiling (`USERNAME_CEILING` times that limit) still bounds a guess spread
over many addresses. IPv4 clients are counted by address and IPv6 clients by their /64 prefix, since
one IPv6 host is usually given a whole /64 and could otherwise pick a fresh address per guess.

An attempt is counted before its secret is checked (argon2), and only if no counter has reached its
limit: the check and the count are one atomic step, so a burst of parallel guesses cannot slip more
than the limit past the check. A refused attempt runs no argon2 and changes no counter, so a flood
costs one counter lookup per request and the window ends when it began plus `window_s`. A success
clears the username-from-this-address (or the link's) counter and takes back what the attempt itself
charged to the wider counters, so successes never count: many people signing in through one NAT
address do not lock it. Only the charge is taken back, and only within the window it was made in (each
window has its own id), so a sign-in that straddles a window's end cannot take an attempt off the
next window's count, and an attempt admitted uncounted takes nothing back.

Counters live in this process with one gateway, or in Redis (one Lua script per attempt) so that
every replica sees the same counts. When Redis is unreachable the throttle fails open: attempts are
admitted uncounted and a warning is logged, because signing in must keep working while the session
store is down; throttling resumes by itself when Redis answers again.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from voxcast.config import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "voxcast:throttle:"

# The username-wide ceiling, in multiples of VOXCAST_LOGIN_MAX_FAILURES: high enough that one
# address's guesses (locked at 1x) cannot reach it, low enough to bound a guess spread over addresses.
USERNAME_CEILING = 10

IPV6_PREFIX = 64


class OnSuccess(Enum):
    KEEP = "keep"  # the attempt stays counted
    CLEAR = "clear"  # the counter is forgotten
    TAKE_BACK = "take back"  # the attempt's own charge is taken back


@dataclass(frozen=True)
class Limit:
    key: str
    max_failures: int
    on_success: OnSuccess = OnSuccess.KEEP


@dataclass(frozen=True)
class Admission:
    """An attempt let through. `last` is true when this attempt used the last try of a counter:
    should it fail, the next attempt is refused. `windows` names, per limit, the window the attempt
    was counted in; empty when it was admitted uncounted (Redis unreachable)."""

    last: bool = False
    windows: tuple[str, ...] = ()


class Throttled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"throttled for {retry_after_s} s")
        self.retry_after_s = retry_after_s


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def address_key(host: str) -> str:
    """The address a client is counted as: an IPv4 address whole (an IPv4-mapped IPv6 one too), an
    IPv6 address by its /64 prefix; anything that is no IP address (a test client's name) as it is."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), IPV6_PREFIX), strict=False))
    return str(ip)


class Counters(ABC):
    """Failure counters over a fixed window that starts with a key's first counted attempt."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s

    @abstractmethod
    async def attempt(self, limits: Sequence[Limit]) -> tuple[float, list[int], list[str]]:
        """When a counter has reached its limit: (seconds until its window ends, [], []), nothing
        counted. Otherwise every key is counted: (0, the counts after this attempt, the id of each
        key's window); ([], []) instead when the attempt could not be counted."""

    @abstractmethod
    async def succeeded(self, clear: Sequence[str], take_back: Sequence[tuple[str, str]]) -> None:
        """Forget the keys in `clear`; take one attempt off each (key, window id) in `take_back`
        whose key is still in that window."""

    async def close(self) -> None:  # noqa: B027 - only counters holding a connection close anything
        return None


class MemoryCounters(Counters):
    """Counters of one gateway process. `clock` (monotonic seconds) is there for tests."""

    def __init__(
        self, window_s: float, clock: Callable[[], float] = time.monotonic, *, prune_from: int = 4096
    ) -> None:
        super().__init__(window_s)
        self._clock = clock
        self._entries: dict[str, list] = {}  # key -> [count, window end, window id]
        self._window_ids = itertools.count(1)
        self._prune_from = self._prune_at = prune_from

    def _live(self, key: str, now: float) -> list | None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] <= now:
            del self._entries[key]
            return None
        return entry

    def _prune(self, now: float) -> None:
        # Guessed usernames from many addresses must not grow the table without bound.
        if len(self._entries) >= self._prune_at:
            self._entries = {k: e for k, e in self._entries.items() if e[1] > now}
            self._prune_at = max(self._prune_from, 2 * len(self._entries))

    async def attempt(self, limits: Sequence[Limit]) -> tuple[float, list[int], list[str]]:
        # No await between reading and writing: atomic on the event loop.
        now = self._clock()
        waits = [
            entry[1] - now
            for limit in limits
            if (entry := self._live(limit.key, now)) is not None and entry[0] >= limit.max_failures
        ]
        if waits:
            return max(waits), [], []
        self._prune(now)
        counts, windows = [], []
        for limit in limits:
            entry = self._live(limit.key, now)
            if entry is None:
                entry = self._entries[limit.key] = [0, now + self.window_s, str(next(self._window_ids))]
            entry[0] += 1
            counts.append(entry[0])
            windows.append(entry[2])
        return 0.0, counts, windows

    async def succeeded(self, clear: Sequence[str], take_back: Sequence[tuple[str, str]]) -> None:
        now = self._clock()
        for key in clear:
            self._entries.pop(key, None)
        for key, window in take_back:
            entry = self._live(key, now)
            if entry is not None and entry[2] == window and entry[0] > 0:
                entry[0] -= 1


# Each counter is a hash: n (the count) and w (the id of its window, set by the attempt that opened
# it). KEYS: counters; ARGV: window ms, a fresh window id, then each key's limit. Returns {ms to wait}
# when a counter has reached its limit (nothing counted), else {0, count1, window1, count2, ...}.
ATTEMPT_LUA = """
local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n >= tonumber(ARGV[i + 2]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, ARGV[1])
      ttl = tonumber(ARGV[1])
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return {wait} end
local result = {0}
for i, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSETNX', key, 'w', ARGV[2])
  if n == 1 or redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
  result[2 * i] = n
  result[2 * i + 1] = redis.call('HGET', key, 'w')
end
return result
"""

# ARGV[1]: how many of KEYS to delete; each of the rest loses one attempt if it is still in the window
# named by its ARGV (a counter that expired meanwhile, or was opened again, keeps its count).
SUCCEEDED_LUA = """
local nclear = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= nclear then
    redis.call('DEL', key)
  elseif redis.call('HGET', key, 'w') == ARGV[i - nclear + 1] then
    if tonumber(redis.call('HGET', key, 'n') or '0') > 0 then redis.call('HINCRBY', key, 'n', -1) end
  end
end
return 0
"""


class RedisCounters(Counters):
    """Counters shared by every gateway replica through Redis (VOXCAST_REDIS_URL)."""

    def __init__(self, url: str, window_s: float, *, timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        super().__init__(window_s)
        # Short timeouts and one retry (a pooled connection Redis dropped is replaced at once): a
        # sign-in waits at most about a second for an unreachable Redis before it fails open.
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._attempt = self._client.register_script(ATTEMPT_LUA)
        self._succeeded = self._client.register_script(SUCCEEDED_LUA)
        self._down = False

    def _unreachable(self, exc: Exception) -> None:
        if not self._down:
            log.warning(
                "sign-in throttle: Redis is unreachable (%s); attempts are admitted uncounted until it "
                "answers again",
                exc,
            )
        self._down = True

    def _reachable(self) -> None:
        if self._down:
            log.warning("sign-in throttle: Redis answers again; failed attempts are counted again")
        self._down = False

    async def attempt(self, limits: Sequence[Limit]) -> tuple[float, list[int], list[str]]:
        from redis.exceptions import RedisError

        window_ms = max(1, int(self.window_s * 1000))
        args = [window_ms, secrets.token_hex(8), *(limit.max_failures for limit in limits)]
        try:
            result = await self._attempt(keys=[limit.key for limit in limits], args=args)
        except (RedisError, OSError) as exc:
            # Fail open: a Redis outage must not lock everybody out of the gateway.
            self._unreachable(exc)
            return 0.0, [], []
        self._reachable()
        if result[0]:
            return int(result[0]) / 1000, [], []
        return 0.0, [int(n) for n in result[1::2]], [str(w) for w in result[2::2]]

    async def succeeded(self, clear: Sequence[str], take_back: Sequence[tuple[str, str]]) -> None:
        from redis.exceptions import RedisError

        keys = [*clear, *(key for key, _ in take_back)]
        try:
            await self._succeeded(keys=keys, args=[len(clear), *(window for _, window in take_back)])
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return
        self._reachable()

    async def close(self) -> None:
        await self._client.aclose()


class SignInThrottle:
    """The limits of sign-ins and share-link PINs over one set of counters."""

    def __init__(
        self,
        counters: Counters,
        *,
        max_failures: int,
        max_failures_per_address: int,
        max_failures_per_username: int | None = None,
    ) -> None:
        self.counters = counters
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.max_failures_per_username = max_failures_per_username or USERNAME_CEILING * max_failures

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.monotonic) -> SignInThrottle:
        counters: Counters
        if settings.redis_url:
            counters = RedisCounters(settings.redis_url, settings.login_window_s)
        else:
            counters = MemoryCounters(settings.login_window_s, clock)
        return cls(
            counters,
            max_failures=settings.login_max_failures,
            max_failures_per_address=settings.login_max_failures_per_address,
        )

    def login_limits(self, username: str, address: str) -> list[Limit]:
        """The username from this address (a success clears it), the username from anywhere, and the
        address. An unknown username is counted like a known one: the answers tell nothing about which
        exist."""
        where = address_key(address)
        # The address first: it holds no "|", so no username can make two pairs share a key.
        return [
            Limit(f"{KEY_PREFIX}login:user-addr:{where}|{username}", self.max_failures, OnSuccess.CLEAR),
            Limit(f"{KEY_PREFIX}login:user:{username}", self.max_failures_per_username, OnSuccess.TAKE_BACK),
            Limit(f"{KEY_PREFIX}login:addr:{where}", self.max_failures_per_address, OnSuccess.TAKE_BACK),
        ]

    def pin_limits(self, share_id: int, address: str) -> list[Limit]:
        """The link (a success clears it), then the address. A link's limit is not per address: its
        PIN has few digits, and only someone holding the link can lock it."""
        return [
            Limit(f"{KEY_PREFIX}pin:share:{share_id}", self.max_failures, OnSuccess.CLEAR),
            Limit(
                f"{KEY_PREFIX}pin:addr:{address_key(address)}",
                self.max_failures_per_address,
                OnSuccess.TAKE_BACK,
            ),
        ]

    async def admit(self, limits: Sequence[Limit]) -> Admission:
        """Count an attempt, or raise Throttled (with whole seconds to wait) when a limit is reached."""
        wait_s, counts, windows = await self.counters.attempt(limits)
        if wait_s > 0:
            raise Throttled(_whole_seconds(wait_s))
        last = any(n >= limit.max_failures for n, limit in zip(counts, limits, strict=False))
        return Admission(last=last, windows=tuple(windows))

    async def succeeded(self, limits: Sequence[Limit], admission: Admission) -> None:
        """Clear the counters a success clears; take this attempt's charge back from the others."""
        clear = [limit.key for limit in limits if limit.on_success is OnSuccess.CLEAR]
        take_back = [
            (limit.key, window)
            for limit, window in zip(limits, admission.windows, strict=False)
            if limit.on_success is OnSuccess.TAKE_BACK
        ]
        await self.counters.succeeded(clear, take_back)

    async def close(self) -> None:
        await self.counters.close()


def wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{math.ceil(seconds / 60)} min"
