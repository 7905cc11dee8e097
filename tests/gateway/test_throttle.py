"""Throttling of password and PIN guessing: failed sign-ins per username from one address, per
username from everywhere (a higher ceiling) and per client address (an IPv6 one by its /64), and wrong
share-link PINs per link and per client address; in one gateway process, and shared by two gateways
through a real Redis, which failing must not stop anyone from signing in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid

import httpx
import pytest
import redis
from argon2 import PasswordHasher
from voxcast.gateway.app import create_app
from voxcast.gateway.auth import store as store_module
from voxcast.gateway.auth.store import Store
from voxcast.gateway.auth.throttle import (
    Admission,
    MemoryCounters,
    RedisCounters,
    SignInThrottle,
    Throttled,
    address_key,
)

from voxcast.config import Settings

from .conftest import PASSWORD, GatewayThread

WINDOW_S = 60
PIN = "2468"


class CountingHasher(PasswordHasher):
    """Real argon2 with cheap parameters, counting every hash and verify (a dummy hash included)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.calls = 0

    def hash(self, password, *, salt=None):
        self.calls += 1
        return super().hash(password, salt=salt)

    def verify(self, hash, password):
        self.calls += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(store_module, "_hasher", counting)
    return counting


@pytest.fixture
def settings(tmp_path, hasher) -> Settings:
    """3 failures per username from one address or per link, 30 per username from anywhere (the
    ceiling: 10 times), 6 per address, in a window of 60 s; the gateway believes
    X-Forwarded-For from loopback, so a test can speak from several addresses."""
    settings = Settings(
        home=tmp_path / "home",
        login_max_failures=3,
        login_max_failures_per_address=6,
        login_window_s=WINDOW_S,
        forwarded_allow_ips="127.0.0.1",
    )
    Store.from_settings(settings).add_user("alice", PASSWORD, "clinician")
    return settings


@contextlib.contextmanager
def gateway(settings: Settings, clock: Clock | None = None):
    """A gateway served by uvicorn on a free port: (an HTTP client for it, the app). With a clock, its
    throttle counts in process on that clock."""
    app = create_app(settings)
    thread = GatewayThread(app)
    url = thread.start()
    if clock is not None:
        app.state.throttle = SignInThrottle.from_settings(settings, clock)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, app
    finally:
        thread.stop()


def login(client: httpx.Client, username: str, password: str, address: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post("/api/auth/login", json={"username": username, "password": password}, headers=headers)


def open_share(client: httpx.Client, token: str, pin: str | None, address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post(f"/api/shares/{token}/open", json={"pin": pin}, headers=headers)


def address() -> str:
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


def assert_throttled(response: httpx.Response, window_s: int = WINDOW_S) -> None:
    assert response.status_code == 429, response.text
    detail = response.json()["detail"]
    assert detail["code"] == "too_many_attempts" and "try again in" in detail["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= window_s


# In one gateway process


def test_failures_lock_a_username_without_argon2_until_the_window_passes(settings, hasher):
    clock = Clock()
    with gateway(settings, clock) as (client, app):
        for _ in range(3):
            r = login(client, "alice", "wrong-password")
            assert r.status_code == 401 and r.json()["detail"]["code"] == "unauthorized"
        calls = hasher.calls
        for password in ("wrong-password", PASSWORD):  # the right password too, while locked
            r = login(client, "alice", password)
            assert_throttled(r)
            assert r.headers["Retry-After"] == str(WINDOW_S)
            assert r.json()["detail"]["message"] == "too many failed sign-ins: try again in 60 s"
        assert hasher.calls == calls, "a refused attempt ran argon2"
        clock.now += WINDOW_S - 20
        assert login(client, "alice", PASSWORD).headers["Retry-After"] == "20"
        clock.now += 20
        r = login(client, "alice", PASSWORD)
        assert r.status_code == 200 and r.json()["user"]["name"] == "user:alice"
        entries = Store.from_settings(settings).audit_entries()
    failed = [e for e in entries if e.action == "login-failed"]
    assert len(failed) == 3 and {e.principal for e in failed} == {"login:alice"}
    assert failed[0].remote.startswith("127.0.0.1:")
    # The lock is written once, not once per refused attempt.
    assert [e.principal for e in entries if e.action == "login-throttled"] == ["login:alice"]


def test_a_success_clears_the_usernames_failures(settings):
    with gateway(settings, Clock()) as (client, app):
        for _ in range(2):
            assert login(client, "alice", "wrong-password").status_code == 401
        assert login(client, "alice", PASSWORD).status_code == 200
        for _ in range(3):
            assert login(client, "alice", "wrong-password").status_code == 401
        assert_throttled(login(client, "alice", PASSWORD))


def test_unknown_usernames_count_the_same_and_cost_an_argon2_too(settings, hasher):
    with gateway(settings, Clock()) as (client, app):
        known, unknown = [], []
        for _ in range(3):
            calls = hasher.calls
            unknown.append(login(client, "nobody", "wrong-password"))
            assert hasher.calls == calls + 1, "no argon2 for an unknown user: its answer comes sooner"
            known.append(login(client, "alice", "wrong-password"))
        assert [r.json() for r in unknown] == [r.json() for r in known]
        calls = hasher.calls
        refused = login(client, "nobody", "wrong-password"), login(client, "alice", "wrong-password")
        for r in refused:
            assert_throttled(r)
        assert refused[0].json() == refused[1].json() and hasher.calls == calls


def test_one_address_is_limited_across_usernames(settings):
    a, b, c = address(), address(), address()
    with gateway(settings, Clock()) as (client, app):
        for username in ("u1", "u2", "u3"):  # 2 each: under the username limit, 6 for address a
            for _ in range(2):
                assert login(client, username, "wrong-password", a).status_code == 401
        assert_throttled(login(client, "u4", "wrong-password", a))
        assert_throttled(login(client, "alice", PASSWORD, a))
        assert login(client, "alice", PASSWORD, b).status_code == 200
        # Successes do not count (each takes back its own attempt): a busy shared address, a hospital's
        # NAT, is not locked by them, and they buy no extra guesses either.
        for username in ("v1", "v2", "v3", "v4", "v5"):
            assert login(client, username, "wrong-password", c).status_code == 401
        for _ in range(8):
            assert login(client, "alice", PASSWORD, c).status_code == 200
        assert login(client, "v6", "wrong-password", c).status_code == 401
        assert_throttled(login(client, "alice", PASSWORD, c))


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere_until_the_ceiling(settings, hasher):
    a, b = "10.1.0.1", "10.1.0.2"
    with gateway(settings, Clock()) as (client, app):
        for _ in range(3):
            assert login(client, "alice", "wrong-password", a).status_code == 401
        assert_throttled(login(client, "alice", PASSWORD, a))
        assert login(client, "alice", PASSWORD, b).status_code == 200
        assert_throttled(login(client, "alice", PASSWORD, a)), "b's success cleared a's count"
        assert login(client, "nobody", "wrong-password", a).status_code == 401, "a is not locked"
        # Successes do not count towards the username's ceiling (30) either.
        for _ in range(35):
            assert login(client, "alice", PASSWORD, b).status_code == 200
        # A guess spread over addresses, under each one's limit, stops at the ceiling: a's 3 and 27 more.
        for i in range(9):
            for _ in range(3):
                assert login(client, "alice", "wrong-password", f"10.2.0.{i}").status_code == 401
        calls = hasher.calls
        for where in (b, "10.3.0.1"):
            assert_throttled(login(client, "alice", PASSWORD, where))
        assert hasher.calls == calls, "a refused attempt ran argon2"
        assert login(client, "nobody", "wrong-password", "10.3.0.1").status_code == 401
        assert login(client, "nobody", "wrong-password", b).status_code == 401
    entries = Store.from_settings(settings).audit_entries()
    # Each address's lock of alice (a and the nine), and the ceiling on the thirtieth failure.
    assert [e.principal for e in entries if e.action == "login-throttled"] == ["login:alice"] * 10


def test_ipv6_clients_count_by_their_64_prefix(settings):
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_key("2001:DB8:1:2::1") == address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.8") != address_key("192.0.2.7")
    assert address_key("testclient") == "testclient"
    with gateway(settings, Clock()) as (client, app):
        # Six addresses of one /64 are one client: a new address per guess buys nothing.
        for i in range(1, 7):
            assert login(client, f"u{i}", "wrong-password", f"2001:db8:1:2::{i}").status_code == 401
        assert_throttled(login(client, "alice", PASSWORD, "2001:db8:1:2:abcd::7"))
        assert login(client, "alice", PASSWORD, "2001:db8:1:3::1").status_code == 200
        # IPv4 by the whole address: a neighbour of a locked address is not locked.
        for i in range(6):
            assert login(client, f"v{i}", "wrong-password", "192.0.2.7").status_code == 401
        assert_throttled(login(client, "alice", PASSWORD, "::ffff:192.0.2.7"))
        assert login(client, "alice", PASSWORD, "192.0.2.8").status_code == 200


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(settings):
    untrusted = settings.model_copy(update={"forwarded_allow_ips": ""})
    with gateway(untrusted, Clock()) as (client, app):
        for i in range(6):  # a new "address" and username each time: all are loopback's
            assert login(client, f"w{i}", "wrong-password", address()).status_code == 401
        assert_throttled(login(client, "alice", PASSWORD, address()))


def test_wrong_pins_lock_a_share_link_and_an_address(settings, hasher):
    store = Store.from_settings(settings)
    alice = store.authenticate("alice", PASSWORD)
    links = [store.create_share("1.2.826.0.1", alice.id, 60, PIN).token for _ in range(5)]
    clock = Clock()
    with gateway(settings, clock) as (client, app):
        first = links[0]
        for _ in range(3):
            r = open_share(client, first, "0000")
            assert r.status_code == 401 and r.json()["detail"]["message"] == "wrong PIN"
        calls = hasher.calls
        r = open_share(client, first, PIN)
        assert_throttled(r)
        assert r.json()["detail"]["message"] == "too many wrong PINs: try again in 60 s"
        assert hasher.calls == calls, "a refused PIN ran argon2"
        assert open_share(client, links[1], PIN).status_code == 200, "another link is not locked"
        # No PIN, or an unknown link, is no guess and counts nothing.
        for _ in range(8):
            assert open_share(client, links[1], None).status_code == 401
            assert open_share(client, "not-a-link", PIN).status_code == 401
        clock.now += WINDOW_S
        assert open_share(client, first, PIN).status_code == 200
        # A success clears the link's failures.
        for _ in range(2):
            assert open_share(client, first, "0000").status_code == 401
        assert open_share(client, first, PIN).status_code == 200
        assert open_share(client, first, "0000").status_code == 401
        # The address: 2 wrong PINs on each of three links (the link limit is 3) lock it for every link.
        a = address()
        for token in links[2:5]:
            for _ in range(2):
                assert open_share(client, token, "0000", a).status_code == 401
        assert_throttled(open_share(client, links[1], PIN, a))
        assert open_share(client, links[1], PIN, address()).status_code == 200
    entries = store.audit_entries()
    assert sum(e.action == "share-pin-failed" for e in entries) == 3 + 2 + 1 + 6
    assert [e.action for e in entries].count("share-pin-throttled") == 2  # the first link, address a


def test_openapi_documents_the_429s(settings):
    paths = create_app(settings).openapi()["paths"]
    for path in ("/api/auth/login", "/api/shares/{token}/open"):
        assert "429" in paths[path]["post"]["responses"], path


def test_memory_counters_forget_expired_keys():
    """Guessed usernames do not grow the table for ever: expired entries go once it is large."""
    clock = Clock()
    counters = MemoryCounters(WINDOW_S, clock, prune_from=7)
    throttle = SignInThrottle(counters, max_failures=3, max_failures_per_address=50)

    async def go():
        for i in range(3):
            await throttle.admit(throttle.login_limits(f"user{i}", "10.0.0.1"))
        clock.now += WINDOW_S
        for name in ("late1", "late2"):
            await throttle.admit(throttle.login_limits(name, "10.0.0.2"))

    asyncio.run(go())
    assert set(counters._entries) == {
        "voxcast:throttle:login:user-addr:10.0.0.2|late1",
        "voxcast:throttle:login:user-addr:10.0.0.2|late2",
        "voxcast:throttle:login:user:late1",
        "voxcast:throttle:login:user:late2",
        "voxcast:throttle:login:addr:10.0.0.2",
    }


@pytest.fixture(params=["memory", "redis"])
def counters_and_expiry(request):
    """Counters, and a way to end the current window of some keys: the clock passing it in process,
    the keys expiring (deleted) in Redis."""
    if request.param == "memory":
        clock = Clock()

        def expire(keys):
            clock.now += WINDOW_S

        yield MemoryCounters(WINDOW_S, clock), expire
        return
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    counters = RedisCounters(url, WINDOW_S)
    used: set[str] = set()

    def expire(keys):
        used.update(keys)
        client.delete(*keys)

    try:
        yield counters, expire  # the test closes the counters, in the event loop that used them
    finally:
        stale = client.keys("voxcast:throttle:*-" + "?" * 12 + "*")
        client.delete(*used, *stale)
        client.close()


def test_a_success_takes_back_only_its_own_attempt_in_its_own_window(counters_and_expiry):
    """A sign-in admitted as its window ends, and checked after, cannot take an attempt off the next
    window's count; an attempt admitted uncounted takes nothing back."""
    counters, expire = counters_and_expiry
    throttle = SignInThrottle(counters, max_failures=3, max_failures_per_address=6)
    tag = uuid.uuid4().hex[:12]
    where = "10.9." + ".".join(str(secrets.randbelow(256)) for _ in range(2))

    def limits(name):
        return throttle.login_limits(f"{name}-{tag}", where)

    async def go():
        try:
            await sequence()
        finally:
            await throttle.close()

    async def sequence():
        ok = limits("alice")
        admission = await throttle.admit(ok)
        expire([limit.key for limit in ok])
        for i in range(5):
            await throttle.admit(limits(f"u{i}"))
        await throttle.succeeded(ok, admission)
        await throttle.succeeded(ok, Admission())
        await throttle.admit(limits("u5"))
        with pytest.raises(Throttled):
            await throttle.admit(limits("u6"))
        # In its own window a success takes its attempt back; the failures stay counted.
        expire([limit.key for limit in limits("u6")])
        for i in range(5):
            await throttle.admit(limits(f"w{i}"))
        for _ in range(4):
            ok = limits("alice")
            await throttle.succeeded(ok, await throttle.admit(ok))
        await throttle.admit(limits("w5"))
        with pytest.raises(Throttled):
            await throttle.admit(limits("w6"))

    asyncio.run(go())


# Shared through Redis


def test_two_gateways_share_one_count_through_redis(settings, redis_url):
    """Two replicas on one Redis (maybe the developer's own, shared with other runs: names and
    addresses are this test's own)."""
    shared = settings.model_copy(update={"redis_url": redis_url})
    user, nobody = f"user-{uuid.uuid4().hex[:12]}", f"nobody-{uuid.uuid4().hex[:12]}"
    Store.from_settings(shared).add_user(user, PASSWORD, "clinician")
    here, elsewhere, there = address(), address(), address()
    with gateway(shared) as (a, _), gateway(shared) as (b, _):
        for client in (a, b, a):
            assert login(client, nobody, "wrong-password", here).status_code == 401
        for client in (a, b):
            assert_throttled(login(client, nobody, "wrong-password", here))
        # A success on one replica clears the failures counted on the other.
        for client in (a, b):
            assert login(client, user, "wrong-password", elsewhere).status_code == 401
        assert login(b, user, PASSWORD, elsewhere).status_code == 200
        for client in (a, b):
            assert login(client, user, "wrong-password", elsewhere).status_code == 401
        assert login(a, user, PASSWORD, elsewhere).status_code == 200
        # One address across replicas.
        for i in range(6):
            assert login((a, b)[i % 2], f"{nobody}-{i}", "wrong-password", there).status_code == 401
        assert_throttled(login(a, user, PASSWORD, there))
        assert_throttled(login(b, user, PASSWORD, there))
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"voxcast:throttle:login:user-addr:{here}|{nobody}"
        assert client.hget(key, "n") == b"3" and 0 < client.pttl(key) <= WINDOW_S * 1000
        assert client.hget(f"voxcast:throttle:login:user:{nobody}", "n") == b"3"
        assert client.hget(f"voxcast:throttle:login:addr:{there}", "n") == b"6"
        client.delete(*client.keys("voxcast:throttle:login:*-????????????*"))
        client.delete(*(f"voxcast:throttle:login:addr:{ip}" for ip in (here, elsewhere, there)))
    finally:
        client.close()


def test_the_throttle_fails_open_while_redis_is_down(settings, own_redis, caplog):
    with_redis = settings.model_copy(update={"redis_url": own_redis.url})
    with gateway(with_redis) as (client, _):
        for _ in range(3):
            assert login(client, "alice", "wrong-password").status_code == 401
        assert_throttled(login(client, "alice", PASSWORD))
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="voxcast.gateway.auth.throttle"):
            assert login(client, "alice", "wrong-password").status_code == 401
            assert login(client, "alice", PASSWORD).status_code == 200
        assert "Redis is unreachable" in caplog.text
        own_redis.start()  # same port, empty: counting starts again
        for _ in range(3):
            assert login(client, "alice", "wrong-password").status_code == 401
        assert_throttled(login(client, "alice", PASSWORD))
