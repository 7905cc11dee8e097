"""Throttling of password and PIN guessing: failed sign-ins per username and per client address, and
wrong share-link PINs per link and per client address, counted over a fixed window.

An attempt is counted before its secret is checked (argon2), and only if no counter has reached its
limit: the check and the count are one atomic step, so a burst of parallel guesses cannot slip more
than the limit past the check. A refused attempt runs no argon2 and changes no counter, so a flood
costs one counter lookup per request and the window ends when it began plus `window_s`. A success
clears the username's (or the link's) counter and gives the address back the attempt it was charged.

Counters live in this process with one gateway, or in Redis (one Lua script per attempt) so that
every replica sees the same counts. When Redis is unreachable the throttle fails open: attempts are
admitted uncounted and a warning is logged, because signing in must keep working while the session
store is down; throttling resumes by itself when Redis answers again.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voxcast.config import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "voxcast:throttle:"


@dataclass(frozen=True)
class Limit:
    key: str
    max_failures: int


@dataclass(frozen=True)
class Admission:
    """An attempt let through and counted. `last` is true when this attempt used the last try of a
    counter: should it fail, the next attempt is refused."""

    last: bool = False


class Throttled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"throttled for {retry_after_s} s")
        self.retry_after_s = retry_after_s


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class Counters(ABC):
    """Failure counters over a fixed window that starts with a key's first counted attempt."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s

    @abstractmethod
    async def attempt(self, limits: Sequence[Limit]) -> tuple[float, list[int]]:
        """When a counter has reached its limit: (seconds until its window ends, []), nothing counted.
        Otherwise every key is counted: (0, the counts after this attempt)."""

    @abstractmethod
    async def succeeded(self, clear: Sequence[str], give_back: Sequence[str]) -> None:
        """Forget the keys in `clear`; take one attempt off each live key in `give_back`."""

    async def close(self) -> None:  # noqa: B027 - only counters holding a connection close anything
        return None


class MemoryCounters(Counters):
    """Counters of one gateway process. `clock` (monotonic seconds) is there for tests."""

    def __init__(
        self, window_s: float, clock: Callable[[], float] = time.monotonic, *, prune_from: int = 4096
    ) -> None:
        super().__init__(window_s)
        self._clock = clock
        self._entries: dict[str, list] = {}  # key -> [count, window end]
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

    async def attempt(self, limits: Sequence[Limit]) -> tuple[float, list[int]]:
        # No await between reading and writing: atomic on the event loop.
        now = self._clock()
        waits = [
            entry[1] - now
            for limit in limits
            if (entry := self._live(limit.key, now)) is not None and entry[0] >= limit.max_failures
        ]
        if waits:
            return max(waits), []
        self._prune(now)
        counts = []
        for limit in limits:
            entry = self._entries.setdefault(limit.key, [0, now + self.window_s])
            entry[0] += 1
            counts.append(entry[0])
        return 0.0, counts

    async def succeeded(self, clear: Sequence[str], give_back: Sequence[str]) -> None:
        now = self._clock()
        for key in clear:
            self._entries.pop(key, None)
        for key in give_back:
            entry = self._live(key, now)
            if entry is not None and entry[0] > 0:
                entry[0] -= 1


# KEYS: counters; ARGV: window ms, then each key's limit. Returns {ms to wait} when a counter has
# reached its limit (nothing counted), else {0, count1, count2, ...}.
ATTEMPT_LUA = """
local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[i + 1]) then
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
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
  result[i + 1] = n
end
return result
"""

# ARGV[1]: how many of KEYS to delete; the rest lose one attempt if they still exist (a counter
# that expired meanwhile is not recreated without an expiry).
SUCCEEDED_LUA = """
local nclear = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= nclear then
    redis.call('DEL', key)
  else
    local n = redis.call('GET', key)
    if n and tonumber(n) > 0 then redis.call('DECR', key) end
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

    async def attempt(self, limits: Sequence[Limit]) -> tuple[float, list[int]]:
        from redis.exceptions import RedisError

        args = [max(1, int(self.window_s * 1000)), *(limit.max_failures for limit in limits)]
        try:
            result = await self._attempt(keys=[limit.key for limit in limits], args=args)
        except (RedisError, OSError) as exc:
            # Fail open: a Redis outage must not lock everybody out of the gateway.
            self._unreachable(exc)
            return 0.0, []
        self._reachable()
        if result[0]:
            return int(result[0]) / 1000, []
        return 0.0, [int(n) for n in result[1:]]

    async def succeeded(self, clear: Sequence[str], give_back: Sequence[str]) -> None:
        from redis.exceptions import RedisError

        try:
            await self._succeeded(keys=[*clear, *give_back], args=[len(clear)])
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return
        self._reachable()

    async def close(self) -> None:
        await self._client.aclose()


class SignInThrottle:
    """The limits of sign-ins and share-link PINs over one set of counters."""

    def __init__(self, counters: Counters, *, max_failures: int, max_failures_per_address: int) -> None:
        self.counters = counters
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address

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
        """The username's counter first (a success clears it), then the address's. An unknown
        username is counted like a known one: the answers tell nothing about which exist."""
        return [
            Limit(f"{KEY_PREFIX}login:user:{username}", self.max_failures),
            Limit(f"{KEY_PREFIX}login:addr:{address}", self.max_failures_per_address),
        ]

    def pin_limits(self, share_id: int, address: str) -> list[Limit]:
        """The link's counter first (a success clears it), then the address's."""
        return [
            Limit(f"{KEY_PREFIX}pin:share:{share_id}", self.max_failures),
            Limit(f"{KEY_PREFIX}pin:addr:{address}", self.max_failures_per_address),
        ]

    async def admit(self, limits: Sequence[Limit]) -> Admission:
        """Count an attempt, or raise Throttled (with whole seconds to wait) when a limit is reached."""
        wait_s, counts = await self.counters.attempt(limits)
        if wait_s > 0:
            raise Throttled(_whole_seconds(wait_s))
        return Admission(last=any(n >= limit.max_failures for n, limit in zip(counts, limits, strict=False)))

    async def succeeded(self, limits: Sequence[Limit]) -> None:
        """The first limit's counter is cleared; the others get their attempt back."""
        await self.counters.succeeded([limits[0].key], [limit.key for limit in limits[1:]])

    async def close(self) -> None:
        await self.counters.close()


def wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{math.ceil(seconds / 60)} min"
