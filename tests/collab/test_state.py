"""The session rules on their own: who may do what, and what each command changes."""

from __future__ import annotations

import pytest
from collabkit import CT, OTHER_STUDY_SERIES, PET, STUDY, view
from voxcast.gateway.collab import InvalidCommand, PermissionDenied, SessionEnded, SessionState
from voxcast.gateway.collab.state import decide, new_session_fields, participant_record

OWNER, USER, GUEST, ADMIN = "u:owner", "u:bob", "g:guest1", "u:admin"
REPLICA = "gw-a"


class Session:
    """A session driven through `decide` alone, applying each patch as a bus would."""

    def __init__(self):
        owner = participant_record(OWNER, "Owner", "user", False, True)
        self.state = SessionState(new_session_fields("s1", STUDY, [CT, PET], owner, "board"))
        self.seq = 0
        self.join(OWNER)
        self.join(USER, "user")
        self.join(GUEST, "guest", may_control=False)
        self.join(ADMIN, "user", admin=True)

    def do(self, actor: str, command: dict) -> dict:
        change = decide(self.state, actor, command, self.seq)
        fields = dict(self.state.fields)
        for key, value in change.patch.items():
            if value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
        self.state = SessionState(fields)
        self.seq += 1
        return change.event

    def join(self, pid, kind="user", admin=False, may_control=True):
        record = participant_record(pid, pid, kind, admin, may_control)
        return self.do(pid, {"type": "join", "participant": record, "replica": REPLICA})


@pytest.fixture
def s():
    return Session()


def test_owner_presents_first_and_only_the_presenter_drives(s):
    assert s.state.presenter == OWNER
    s.do(OWNER, {"type": "viewport", "viewport_id": "ax", "state": view()})
    assert s.state.viewport("ax")["window_center"] == 40
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "viewport", "viewport_id": "ax", "state": view(60)})
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "crosshair", "point": [1, 2, 3]})
    with pytest.raises(PermissionDenied):
        s.do(GUEST, {"type": "layout", "layout": {"rows": 1, "columns": 2, "viewports": ["a", "b"]}})


def test_request_then_hand_over(s):
    event = s.do(USER, {"type": "request_control"})
    assert event["type"] == "control_requested"
    assert s.state.meta["requests"] == [USER]
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "hand_over", "to": USER})  # only the presenter hands over
    event = s.do(OWNER, {"type": "hand_over", "to": USER})
    assert (event["presenter"], event["previous"], event["reason"]) == (USER, OWNER, "hand_over")
    assert s.state.presenter == USER and s.state.meta["requests"] == []
    s.do(USER, {"type": "viewport", "viewport_id": "ax", "state": view(80)})


def test_admin_takes_control_a_plain_user_cannot(s):
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "take_control"})
    assert s.do(ADMIN, {"type": "take_control"})["presenter"] == ADMIN


def test_guest_needs_a_grant_to_take_control(s):
    with pytest.raises(PermissionDenied):
        s.do(GUEST, {"type": "request_control"})
    with pytest.raises(PermissionDenied):
        s.do(OWNER, {"type": "hand_over", "to": GUEST})
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "grant_control", "participant_id": GUEST})
    s.do(OWNER, {"type": "grant_control", "participant_id": GUEST})
    s.do(OWNER, {"type": "hand_over", "to": GUEST})
    assert s.state.presenter == GUEST
    # Withdrawing the grant from a presenting guest gives control back to the owner.
    event = s.do(OWNER, {"type": "grant_control", "participant_id": GUEST, "allowed": False})
    assert event["presenter"] == OWNER and s.state.presenter == OWNER


def test_no_series_outside_the_study(s):
    with pytest.raises(PermissionDenied) as err:
        s.do(OWNER, {"type": "viewport", "viewport_id": "ax", "state": view(series=OTHER_STUDY_SERIES)})
    assert err.value.field == "state.series_uid"
    fused = view(fusion={"series_uid": OTHER_STUDY_SERIES})
    with pytest.raises(PermissionDenied):
        s.do(OWNER, {"type": "viewport", "viewport_id": "ax", "state": fused})
    s.do(OWNER, {"type": "viewport", "viewport_id": "ax", "state": view(fusion={"series_uid": PET})})


def test_detach_and_follow(s):
    s.do(USER, {"type": "detach"})
    assert s.state.participant(USER)["following"] is False
    with pytest.raises(InvalidCommand):
        s.do(USER, {"type": "detach"})
    s.do(USER, {"type": "follow"})
    assert s.state.participant(USER)["following"] is True


def test_pointers_are_named_and_hidden_with_null(s):
    event = s.do(GUEST, {"type": "pointer", "viewport_id": "ax", "point": [1, 2, 3]})
    assert event["pointer"]["name"] == GUEST
    assert s.state.fields[f"ptr:{GUEST}"]["point"] == [1, 2, 3]
    s.do(GUEST, {"type": "pointer", "viewport_id": "ax", "point": None})
    assert f"ptr:{GUEST}" not in s.state.fields


def test_annotation_deleted_by_author_or_presenter_only(s):
    arrow = {"kind": "arrow", "viewport_id": "ax", "tip": [0, 0, 0], "tail": [5, 5, 0], "text": "lesion"}
    aid = s.do(GUEST, {"type": "annotate", "annotation": arrow})["annotation"]["id"]
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "delete_annotation", "annotation_id": aid})
    s.do(OWNER, {"type": "delete_annotation", "annotation_id": aid})
    assert s.state.public()["annotations"] == []


def test_presenter_leaving_returns_control_to_the_owner(s):
    s.do(OWNER, {"type": "hand_over", "to": USER})
    assert s.do(USER, {"type": "leave", "replica": REPLICA})["presenter"] == OWNER


def test_only_owner_or_admin_ends_and_nothing_happens_after(s):
    with pytest.raises(PermissionDenied):
        s.do(USER, {"type": "end"})
    s.do(OWNER, {"type": "end"})
    assert s.state.ended
    with pytest.raises(SessionEnded):
        s.do(OWNER, {"type": "viewport", "viewport_id": "ax", "state": view()})


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ({"type": "fly"}, "type"),
        (
            {"type": "viewport", "viewport_id": "ax", "state": {**view(), "window_width": -1}},
            "state.window_width",
        ),
        ({"type": "viewport", "viewport_id": "a b", "state": view()}, "viewport_id"),
        ({"type": "viewport", "viewport_id": "ax", "state": {**view(), "zoom": 2}}, "state.zoom"),
        ({"type": "crosshair", "point": [1, 2]}, "point"),
        ({"type": "hand_over", "to": "u:nobody"}, "to"),
        ({"type": "layout", "layout": {"rows": 1, "columns": 1, "viewports": ["a", "b"]}}, "layout"),
    ],
)
def test_bad_commands_name_the_field(s, command, field):
    with pytest.raises(InvalidCommand) as err:
        s.do(OWNER, command)
    assert err.value.field == field
    assert err.value.to_message()["field"] == field


def test_strangers_are_refused(s):
    with pytest.raises(PermissionDenied):
        s.do("u:stranger", {"type": "pointer", "viewport_id": "ax", "point": [0, 0, 0]})


def test_public_state_hides_invitation_secrets(s):
    record = {"jti": "j1", "kind": "guest", "may_control": False, "pin_hash": "$argon2$...", "failures": 0}
    s.do(OWNER, {"type": "invite", "invitation": {**record, "revoked": False}})
    assert "pin_hash" not in repr(s.state.public())


def test_a_replica_that_went_away_takes_its_connections_with_it(s):
    s.join(USER, "user")  # a second connection, through the same replica
    record = s.state.participant(USER)
    assert record["connections"] == {REPLICA: 2}
    s.do(OWNER, {"type": "hand_over", "to": USER})
    other = participant_record("u:dan", "Dan", "user", False, True)
    s.do("u:dan", {"type": "join", "participant": other, "replica": "gw-b"})
    # A second connection of the guest, through another replica, outlives the first.
    s.do(GUEST, {"type": "join", "participant": s.state.participant(GUEST), "replica": "gw-b"})
    event = s.do("", {"type": "replica_gone", "replica": REPLICA})
    assert set(event["left"]) == {OWNER, USER, GUEST, ADMIN}
    # What each of them still has, so a client can show who is gone without the whole state.
    assert event["online"] == {OWNER: 0, USER: 0, GUEST: 1, ADMIN: 0}
    assert s.state.presenter is None  # the owner went with it
    assert s.state.participant("u:dan")["connections"] == {"gw-b": 1}
    with pytest.raises(InvalidCommand):
        s.do("", {"type": "replica_gone", "replica": REPLICA})
    # Dan asks for control of the undriven session and gets it at once.
    assert s.do("u:dan", {"type": "request_control"})["presenter"] == "u:dan"
    # The replica comes back and puts its connections back.
    event = s.do("", {"type": "presence", "replica": REPLICA, "counts": {OWNER: 1, USER: 2}})
    assert (event["participants"], event["online"]) == (sorted([OWNER, USER]), {OWNER: 1, USER: 2})
    public = {p["id"]: p["connections"] for p in s.state.public()["participants"]}
    assert public == {OWNER: 1, USER: 2, GUEST: 1, ADMIN: 0, "u:dan": 1}
