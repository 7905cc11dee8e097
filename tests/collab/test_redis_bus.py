"""The Redis bus on its own, and a session surviving a Redis restart (a Redis started here)."""

from __future__ import annotations

import asyncio

import pytest
from collabkit import CT, STUDY, events_until, make_hubs, next_event, run, view
from voxcast.gateway.collab import BusUnavailable, Identity, InProcessBus, SessionNotFound, make_bus
from voxcast.gateway.collab.bus import Published, Resync, Snapshot
from voxcast.gateway.collab.redis_bus import RedisBus

from voxcast.config import Settings

OWNER = Identity.user("owner", "Dr Owner")


def test_settings_choose_the_bus(redis_url):
    assert isinstance(make_bus(Settings()), InProcessBus)
    bus = make_bus(Settings(redis_url=redis_url))
    assert isinstance(bus, RedisBus)
    run(bus.close())


def test_commit_is_compare_and_set_and_published_in_order(redis_url):
    async def scenario():
        one, two = RedisBus(redis_url), RedisBus(redis_url)
        sid = "bus-test-" + asyncio.get_running_loop().__class__.__name__ + str(id(one))
        try:
            assert await one.create(sid, {"meta": {"n": 0}}, 60)
            assert not await two.create(sid, {"meta": {"n": 1}}, 60)
            sub = await two.subscribe(sid)
            assert await one.commit(sid, 0, {"type": "x"}, {"a": 1}, 60) == (True, 1)
            assert await two.commit(sid, 0, {"type": "y"}, {"a": 2}, 60) == (False, 1)
            assert await two.commit(sid, 1, {"type": "z"}, {"a": None, "b": [1, 2]}, 60) == (True, 2)
            first, second = await sub.get(), await sub.get()
            assert isinstance(first, Published) and (first.seq, first.patch) == (1, {"a": 1})
            assert (second.seq, second.event, second.patch) == (2, {"type": "z"}, {"a": None, "b": [1, 2]})
            assert await one.load(sid) == Snapshot(2, {"meta": {"n": 0}, "b": [1, 2]})
            # A restore never goes back in time, and tells the other replicas to reload.
            assert not await one.restore(sid, Snapshot(1, {"meta": {}}), 60)
            assert await one.restore(sid, Snapshot(5, {"meta": {"n": 5}}), 60)
            assert isinstance(await sub.get(), Resync)
            assert await two.current_seq(sid) == 5
            # Without an expected number (a pointer move), it commits at whatever the session is at.
            assert await one.commit(sid, None, {"type": "p"}, {"ptr:x": [1, 2, 3]}, 60) == (True, 6)
            pointer = await sub.get()
            assert (pointer.seq, pointer.patch) == (6, {"ptr:x": [1, 2, 3]})
            await sub.close()
            assert await one.commit("missing-" + sid, 0, {}, {}, 60) == (False, None)
        finally:
            await one.close()
            await two.close()

    run(scenario())


def test_sessions_expire_unless_touched(redis_url):
    async def scenario():
        bus = RedisBus(redis_url)
        try:
            await bus.create("expiring-session", {"meta": {}}, 0.3)
            assert await bus.touch("expiring-session", 0.3)
            await asyncio.sleep(0.5)
            assert await bus.load("expiring-session") is None
            assert not await bus.touch("expiring-session", 0.3)
        finally:
            await bus.close()

    run(scenario())


def test_unreachable_redis_is_a_clear_error():
    async def scenario():
        bus = RedisBus("redis://127.0.0.1:1/0", connect_wait_s=0.2)
        try:
            with pytest.raises(BusUnavailable):
                await bus.load("x")
        finally:
            await bus.close()

    run(scenario())


def test_session_survives_a_redis_restart_and_resynchronises(own_redis):
    async def scenario():
        (a, b), close = await make_hubs("redis", own_redis.url, keepalive_s=0.2)
        try:
            sid = await a.create_session(OWNER, STUDY, [CT])
            owner = await a.join(sid, OWNER)
            token = await owner.invite("user")
            bob = Identity.user("bob", "Dr Bob")
            viewer = await b.join(sid, bob, await b.redeem(token, user=bob))
            await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(1)})
            arrow = {
                "kind": "arrow",
                "viewport_id": "ax",
                "tip": [0, 0, 0],
                "tail": [1, 1, 1],
                "text": "before",
            }
            noted = await owner.send({"type": "annotate", "annotation": arrow})
            for p in (owner, viewer):
                await events_until(p, noted["seq"])

            own_redis.stop()
            with pytest.raises(BusUnavailable):
                await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(2)})
            # The connections stay open: nothing to read, no error.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(viewer.receive(), 0.3)

            own_redis.start()  # empty: no persistence
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                try:
                    restored = await a.state(sid)
                    break
                except (SessionNotFound, BusUnavailable):
                    assert asyncio.get_running_loop().time() < deadline, "session not restored"
                    await asyncio.sleep(0.1)
            assert restored.viewport("ax")["window_center"] == 1

            # The session carries on across both replicas, in order.
            change = await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(3)})
            for p in (owner, viewer):
                message = await next_event(p)
                while message["type"] != "viewport" and message["seq"] < change["seq"]:
                    message = await next_event(p)
                if message["type"] == "state":
                    assert message["state"]["viewports"]["ax"]["window_center"] == 3
                else:
                    assert (message["seq"], message["state"]["window_center"]) == (change["seq"], 3)
            carol = Identity.user("carol", "Dr Carol")
            late = await b.join(sid, carol, await b.redeem(await owner.invite("user"), user=carol))
            state = (await next_event(late))["state"]
            assert state["annotations"][0]["text"] == "before"
            assert state["viewports"]["ax"]["window_center"] == 3
            assert a.bus.reconnects >= 1 and b.bus.reconnects >= 1
            # Presence is right again, even if a replica was briefly counted as gone.
            want = {OWNER.participant_id: 1, bob.participant_id: 1, carol.participant_id: 1}
            while True:
                public = (await a.state(sid)).public()
                if {p["id"]: p["connections"] for p in public["participants"]} == want:
                    break
                assert asyncio.get_running_loop().time() < deadline + 10, public["participants"]
                await asyncio.sleep(0.1)
        finally:
            await close()

    run(scenario(), timeout=60)


def test_a_garbled_message_does_not_stop_the_reader(redis_url, caplog):
    async def scenario():
        import redis.asyncio as aioredis
        from voxcast.gateway.collab.redis_bus import _channel

        bus = RedisBus(redis_url)
        raw = aioredis.Redis.from_url(redis_url)
        sid = f"garbled-{id(bus)}"
        try:
            await bus.create(sid, {"meta": {}}, 60)
            sub = await bus.subscribe(sid)
            await raw.publish(_channel(sid), "not a change")
            assert await bus.commit(sid, 0, {"type": "x"}, {"a": 1}, 60) == (True, 1)
            message = await asyncio.wait_for(sub.get(), 10)
            assert isinstance(message, Published) and message.seq == 1
        finally:
            await raw.aclose()
            await bus.close()

    run(scenario())
    assert "unreadable message" in caplog.text
