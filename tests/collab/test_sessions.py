"""Sessions across two hubs (two gateway replicas): over the in-process bus and over a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
from collabkit import (
    CT,
    OTHER_STUDY_SERIES,
    PET,
    STUDY,
    events_until,
    ladder_renderer,
    make_hubs,
    next_event,
    run,
    view,
)
from voxcast.gateway.collab import (
    Identity,
    InvalidCommand,
    PermissionDenied,
    SessionEnded,
    SessionNotFound,
    VolumeUnavailable,
)

OWNER = Identity.user("owner", "Dr Owner")
BOB = Identity.user("bob", "Dr Bob")
CAROL = Identity.user("carol", "Dr Carol")
ADMIN = Identity.user("root", "Admin", admin=True)


@pytest.fixture(params=["inprocess", "redis"])
def bus_kind(request):
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    return request.param


@pytest.fixture
def hubs_for(bus_kind, request):
    url = request.getfixturevalue("redis_url") if bus_kind == "redis" else None
    return lambda **kw: make_hubs(bus_kind, url, **kw)


async def start_board(hub_a, hub_b):
    """Owner on A, Bob on A, Carol on B, a guest on B; returns them with their first (state) message read."""
    sid = await hub_a.create_session(OWNER, STUDY, [CT, PET], "tumor board")
    owner = await hub_a.join(sid, OWNER)
    user_token = await owner.invite("user")
    guest_token = await owner.invite("guest", pin="2468")
    bob = await hub_a.join(sid, BOB, await hub_a.redeem(user_token, user=BOB))
    carol = await hub_b.join(sid, CAROL, await hub_b.redeem(user_token, user=CAROL))
    grant = await hub_b.redeem(guest_token, pin="2468")
    guest = await hub_b.join(sid, Identity.guest(grant, "Visiting oncologist"), grant)
    people = [owner, bob, carol, guest]
    for p in people:
        assert (await next_event(p))["type"] == "state"
    return sid, people


def test_changes_from_both_replicas_reach_everyone_in_one_order(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for()
        try:
            sid, people = await start_board(a, b)
            owner, bob, carol, guest = people
            layout = {"rows": 1, "columns": 2, "viewports": ["ax", "cor"]}
            await owner.send({"type": "layout", "layout": layout})

            async def drag():
                for i in range(30):
                    await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(i)})

            async def point(p, n):
                for i in range(n):
                    await p.send({"type": "pointer", "viewport_id": "ax", "point": [i, 0, 0]})

            await asyncio.gather(drag(), point(carol, 15), point(guest, 15), point(bob, 10))
            line = {
                "kind": "line",
                "viewport_id": "ax",
                "series_uid": CT,
                "start": [0, 0, 40],
                "end": [30, 40, 40],
            }
            ann = await carol.send({"type": "annotate", "annotation": line})
            assert ann["annotation"]["measurement"]["length_mm"] == pytest.approx(50.0)
            ellipse = {
                "kind": "ellipse",
                "viewport_id": "ax",
                "series_uid": CT,
                "center": [0, 0, 40],
                "axis_a": [4, 0, 0],
                "axis_b": [0, 3, 0],
            }
            roi = await guest.send({"type": "annotate", "annotation": ellipse})
            assert roi["annotation"]["measurement"]["mean"] == pytest.approx(100.0, abs=1e-3)
            await carol.send({"type": "request_control"})
            handed = await owner.send({"type": "hand_over", "to": CAROL.participant_id})
            last = await carol.send({"type": "viewport", "viewport_id": "cor", "state": view(99)})
            with pytest.raises(PermissionDenied):
                await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(7)})

            seen = [await events_until(p, last["seq"]) for p in people]
            for events in seen:
                seqs = [e["seq"] for e in events]
                assert seqs == list(range(seqs[0], last["seq"] + 1)), "gapless, in order"
            first = max(events[0]["seq"] for events in seen)
            # Everyone saw the same event at each sequence number.
            by_seq = [{e["seq"]: e for e in events if e["seq"] >= first} for events in seen]
            assert all(view_ == by_seq[0] for view_ in by_seq[1:])
            kinds = [e["type"] for e in seen[0]]
            assert kinds.count("viewport") == 31 and kinds.count("pointer") == 40
            assert handed["presenter"] == CAROL.participant_id
            # Both replicas hold the same state, with the annotations saved in it.
            sa, sb = await a.state(sid), await b.state(sid)
            assert sa.public() == sb.public()
            assert [x["kind"] for x in sa.public()["annotations"]] == ["line", "ellipse"]
            assert sa.presenter == CAROL.participant_id
            assert sa.viewport("ax")["window_center"] == 29
        finally:
            await close()

    run(scenario())


def test_late_joiner_on_the_other_replica_gets_the_state(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for()
        try:
            sid, (owner, *_rest) = await start_board(a, b)
            await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(55)})
            arrow = {
                "kind": "arrow",
                "viewport_id": "ax",
                "tip": [1, 2, 3],
                "tail": [9, 9, 9],
                "text": "node",
            }
            await owner.send({"type": "annotate", "annotation": arrow})
            token = await owner.invite("user")
            dave = Identity.user("dave", "Dr Dave")
            late = await b.join(sid, dave, await b.redeem(token, user=dave))
            first = await next_event(late)
            assert first["type"] == "state"
            state = first["state"]
            assert state["viewports"]["ax"]["window_center"] == 55
            assert state["annotations"][0]["text"] == "node"
            assert {p["id"] for p in state["participants"]} >= {OWNER.participant_id, dave.participant_id}
            assert first["seq"] >= 9  # the board's joins and invitations, the view and the arrow
        finally:
            await close()

    run(scenario())


def test_a_participant_that_stops_reading_does_not_stall_the_others(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for(outbox_limit=32, renderer=ladder_renderer())
        try:
            sid, (owner, bob, carol, guest) = await start_board(a, b)

            # The guest on B never reads again; the others read while the presenter drags.
            async def read_all(p):
                seen = []
                while not seen or seen[-1] != 199:
                    event = await next_event(p)
                    if event["type"] == "viewport":
                        seen.append(event["state"]["window_center"])
                return seen

            readers = [asyncio.create_task(read_all(p)) for p in (owner, bob, carol)]
            for i in range(200):
                last = await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(i)})
                await asyncio.sleep(0.001)  # a fast drag, still paced like input events
            for seen in await asyncio.gather(*readers):
                assert seen == list(range(200))
            # The stalled one skips to the whole current state, and at most one frame per viewport waits.
            assert guest.outbox.resyncs >= 1
            message = await next_event(guest)
            assert message["type"] == "state" and message["seq"] >= last["seq"] - 32
            assert guest.frames.pending() <= 1
        finally:
            await close()

    run(scenario())


def test_frames_render_once_per_view_state_and_late_joiners_get_the_settled_frame(hubs_for):
    async def scenario():
        log_a, log_b = [], []
        (a, b), close = await hubs_for()
        a.renderer, b.renderer = ladder_renderer(log_a), ladder_renderer(log_b)
        try:
            sid, (owner, bob, carol, guest) = await start_board(a, b)
            for i in range(5):
                await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(100 + i)})
                for p in (owner, bob, carol, guest):
                    while True:
                        vid, frame = await asyncio.wait_for(p.frames.get(), 10)
                        if frame["window_center"] == 100 + i and frame["rung"] == "lossless":
                            break
            # One render per view state on each gateway, however many follow there.
            assert len(log_a) <= 5 and len(log_b) <= 5
            assert log_a[-1][1]["window_center"] == 104 and log_b[-1][1]["window_center"] == 104
            renders = a.renders(sid)
            token = await owner.invite("user")
            dave = Identity.user("dave", "Dr Dave")
            late = await a.join(sid, dave, await a.redeem(token, user=dave))
            vid, frame = late.frames._pending and next(iter(late.frames._pending.items()))
            assert (vid, frame["rung"], frame["window_center"]) == ("ax", "lossless", 104)
            assert a.renders(sid) == renders
            # Detached participants stop getting the session's frames; re-following gives the settled one.
            await bob.send({"type": "detach"})
            while bob.frames.pending():
                await bob.frames.get()
            await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(200)})
            vid, frame = await asyncio.wait_for(carol.frames.get(), 10)
            while frame["rung"] != "lossless":
                vid, frame = await asyncio.wait_for(carol.frames.get(), 10)
            await asyncio.sleep(0.05)
            assert bob.frames.pending() == 0
            await bob.send({"type": "follow"})
            vid, frame = await asyncio.wait_for(bob.frames.get(), 10)
            assert frame["window_center"] == 200
        finally:
            await close()

    run(scenario())


def test_guest_permissions_and_the_owner_ending_the_session(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for()
        try:
            sid, (owner, bob, carol, guest) = await start_board(a, b)
            with pytest.raises(PermissionDenied):
                await guest.send({"type": "request_control"})
            with pytest.raises(PermissionDenied):
                await guest.send({"type": "take_control"})
            other = {
                "kind": "line",
                "viewport_id": "ax",
                "series_uid": OTHER_STUDY_SERIES,
                "start": [0, 0, 0],
            }
            with pytest.raises(PermissionDenied):
                await guest.send({"type": "annotate", "annotation": {**other, "end": [1, 1, 1]}})
            with pytest.raises(PermissionDenied):
                await bob.send({"type": "end"})
            # A series of the study whose volume cannot be loaded: a clear error, nothing saved.
            pet_line = {
                "kind": "line",
                "viewport_id": "ax",
                "series_uid": PET,
                "start": [0, 0, 0],
                "end": [1, 0, 0],
            }
            with pytest.raises(VolumeUnavailable) as err:
                await bob.send({"type": "annotate", "annotation": {**pet_line, "end": [1, 0, 0]}})
            assert err.value.to_message()["code"] == "unavailable"
            # Granted, the guest may ask, and gets control when handed over.
            await owner.send({"type": "grant_control", "participant_id": guest.id})
            await guest.send({"type": "request_control"})
            await owner.send({"type": "hand_over", "to": guest.id})
            await guest.send({"type": "viewport", "viewport_id": "ax", "state": view(1)})
            # Presenting, a guest still may not invite: an invitation would outlive their own.
            with pytest.raises(PermissionDenied):
                await guest.invite("guest", pin="2468", may_control=True)
            # The owner ends it: everyone, on both replicas, gets "ended" and then the stream stops.
            ended = await owner.send({"type": "end"})
            for p in (bob, carol, guest):
                events = await events_until(p, ended["seq"])
                assert events[-1]["type"] == "ended"
                with pytest.raises(SessionEnded):
                    await next_event(p)
            with pytest.raises(SessionEnded):
                await b.join(sid, CAROL)
        finally:
            await close()

    run(scenario())


def test_guesses_sent_at_once_get_no_more_tries_than_one_by_one(hubs_for):
    """Each try is counted before its PIN is checked: 40 guesses in parallel on two replicas see
    at most five PINs checked, the rest refused as revoked, and the right PIN among them gets in
    only if it was one of the five."""

    async def scenario():
        (a, b), close = await hubs_for()
        try:
            sid = await a.create_session(OWNER, STUDY, [CT])
            owner = await a.join(sid, OWNER)
            token = await owner.invite("guest", pin="4321")
            pins = ["0000"] * 39 + ["4321"]
            results = await asyncio.gather(
                *((a, b)[i % 2].redeem(token, pin=pin) for i, pin in enumerate(pins)),
                return_exceptions=True,
            )
            checked = [r for r in results if not isinstance(r, PermissionDenied) or r.field == "pin"]
            assert len(checked) <= 5
            assert all(isinstance(r, PermissionDenied) for r in results if r not in checked)
            assert all("revoked" in r.message for r in results if r not in checked)
            with pytest.raises(PermissionDenied) as err:
                await b.redeem(token, pin="4321")
            assert "revoked" in err.value.message
            # One by one, a right PIN after four wrong ones gets in, and gives its try back.
            token = await owner.invite("guest", pin="1357")
            for left in (4, 3, 2, 1):
                with pytest.raises(PermissionDenied) as err:
                    await (a, b)[left % 2].redeem(token, pin="0000")
                assert err.value.message == f"wrong PIN ({left} tr{'y' if left == 1 else 'ies'} left)"
            assert (await b.redeem(token, pin="1357")).kind == "guest"
            assert (await a.redeem(token, pin="1357")).kind == "guest"
        finally:
            await close()

    run(scenario())


def test_invitations(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for()
        try:
            sid = await a.create_session(OWNER, STUDY, [CT])
            # The owner may invite before connecting (the viewer's invite button, through REST).
            early = await b.invite(sid, OWNER, "user")
            with pytest.raises(PermissionDenied):
                await b.invite(sid, BOB, "user")  # not a participant
            owner = await a.join(sid, OWNER)
            with pytest.raises(PermissionDenied):
                await b.join(sid, BOB)  # no invitation
            assert (await b.redeem(early, user=CAROL)).participant_id == CAROL.participant_id
            await b.join(sid, ADMIN)  # admins may enter any session
            user_token = await owner.invite("user")
            with pytest.raises(PermissionDenied):
                await b.redeem(user_token)  # a user invitation needs a signed-in user
            with pytest.raises(PermissionDenied):
                await b.redeem(user_token[:-4] + "AAAA", user=BOB)  # tampered
            grant = await b.redeem(user_token, user=BOB)
            with pytest.raises(PermissionDenied):
                await b.join(sid, CAROL, grant)  # someone else's grant
            with pytest.raises(InvalidCommand):
                await owner.invite("guest")  # a guest invitation needs a PIN
            guest_token = await owner.invite("guest", pin="1357")
            for _ in range(4):
                with pytest.raises(PermissionDenied):
                    await b.redeem(guest_token, pin="0000")
            assert (await b.redeem(guest_token, pin="1357")).study_uid == STUDY
            with pytest.raises(PermissionDenied):
                await b.redeem(guest_token, pin="0000")
            with pytest.raises(PermissionDenied) as err:
                await b.redeem(guest_token, pin="1357")  # revoked after five wrong PINs
            assert "no longer valid" in str(err.value)
            # A signed-in user may take a guest invitation, with its PIN, and joins as themselves.
            pinned = await owner.invite("guest", pin="9753", minutes=30)
            with pytest.raises(PermissionDenied):
                await b.redeem(pinned, pin="0000", user=CAROL)
            grant = await b.redeem(pinned, pin="9753", user=CAROL)
            assert (grant.kind, grant.participant_id, grant.may_control) == (
                "user",
                CAROL.participant_id,
                True,
            )
            assert 29 * 60 < grant.expires_at - time.time() <= 30 * 60  # the guest token expires with it
            # Someone holding access to this study already (a share link) joins as a guest, no control.
            grant = await b.redeem(user_token, guest_of=STUDY)
            assert (grant.kind, grant.may_control) == ("guest", False)
            with pytest.raises(PermissionDenied) as err:
                await b.redeem(user_token, guest_of="1.2.840.99")
            assert err.value.message == "this invitation is for another study than the one your link opens"
            with pytest.raises(SessionNotFound):
                await b.join("nope", OWNER)
            with pytest.raises(PermissionDenied):
                await a.create_session(
                    Identity.guest(await a.redeem(await owner.invite("guest", pin="1111"), pin="1111"), "x"),
                    STUDY,
                    [CT],
                )
        finally:
            await close()

    run(scenario())


def test_connections_of_a_replica_that_died_are_cleared(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for(keepalive_s=0.1)
        try:
            sid, (owner, bob, carol, guest) = await start_board(a, b)
            await owner.send({"type": "hand_over", "to": carol.id})
            # Replica B dies without a word: no leave, no more heartbeats.
            b._heartbeat.cancel()
            for room in list(b._rooms.values()):
                await room.close()
            gone = None
            while gone is None:
                message = await next_event(owner)
                if message["type"] == "replica_gone":
                    gone = message
            assert set(gone["left"]) == {carol.id, guest.id}
            assert gone["online"] == {carol.id: 0, guest.id: 0}  # what a client shows as gone
            assert gone["presenter"] == owner.id  # control went back to the owner, who is here
            state = await a.state(sid)
            assert {p["id"]: p["connections"] for p in state.public()["participants"]} == {
                owner.id: 1,
                bob.id: 1,
                carol.id: 0,
                guest.id: 0,
            }
        finally:
            await close()

    run(scenario())


def test_a_replica_taken_for_dead_puts_its_connections_back(hubs_for):
    async def scenario():
        (a, b), close = await hubs_for(keepalive_s=0.1)
        try:
            sid, (owner, bob, carol, guest) = await start_board(a, b)
            b._heartbeat.cancel()  # B misses its heartbeats for a while, but is alive
            kinds = []
            while "replica_gone" not in kinds:
                kinds.append((await next_event(owner))["type"])
            b._heartbeat = asyncio.create_task(b._heartbeat_forever())
            presence = None
            while presence is None:
                message = await next_event(owner)
                if message["type"] == "presence":
                    presence = message
            assert presence["online"] == {carol.id: 1, guest.id: 1}
            state = await a.state(sid)
            assert all(p["connections"] == 1 for p in state.public()["participants"])
        finally:
            await close()

    run(scenario())
