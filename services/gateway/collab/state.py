"""A session's state as flat fields, and the rules that change it.

The state is a dict of JSON values keyed by field name ("meta", "layout", "p:<participant>",
"vp:<viewport>", "ann:<annotation>", "ptr:<participant>", "inv:<invitation>") so that a bus can
store it as one hash and a change is a small patch of fields. `decide` is pure: given the state,
who acts and what they ask, it returns the event to broadcast and the patch to store, or raises.
Every replica applies the same patches in the same order, so every replica holds the same state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from . import models
from .errors import InvalidCommand, PermissionDenied, SessionEnded

# Commands a participant may send; the others are issued by the hub on their behalf.
CLIENT_COMMANDS = frozenset(
    {
        "layout",
        "viewport",
        "crosshair",
        "request_control",
        "hand_over",
        "take_control",
        "grant_control",
        "detach",
        "follow",
        "pointer",
        "annotate",
        "delete_annotation",
        "end",
    }
)
# Changes that depend on nothing before them but the sender being a participant: committed without
# compare-and-set, so a room full of moving pointers never makes the presenter retry.
UNORDERED_COMMANDS = frozenset({"pointer"})
MAX_ANNOTATIONS = 500
MAX_INVITE_FAILURES = 5
# What anyone holding an invitation revoked by wrong PINs is told.
REVOKED = (
    f"this invitation is no longer valid: revoked after {MAX_INVITE_FAILURES} wrong PINs; ask for a new one"
)
# Acts for commands no participant sends (a wrong PIN from someone not yet admitted).
_SYSTEM = {"id": "", "name": "voxcast", "admin": False}


@dataclass(frozen=True)
class Change:
    event: dict
    patch: dict[str, Any]  # field -> new JSON value, or None to delete the field


class SessionState:
    """Read-only view over a session's fields."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @property
    def meta(self) -> dict:
        return self.fields["meta"]

    @property
    def session_id(self) -> str:
        return self.meta["id"]

    @property
    def study_uid(self) -> str:
        return self.meta["study_uid"]

    @property
    def owner(self) -> str:
        return self.meta["owner"]

    @property
    def presenter(self) -> str | None:
        return self.meta["presenter"]

    @property
    def presenter_online(self) -> bool:
        return bool(self.presenter and online(self.participant(self.presenter)))

    @property
    def ended(self) -> bool:
        return self.meta["ended"]

    def participant(self, pid: str) -> dict | None:
        return self.fields.get(f"p:{pid}")

    def participants(self) -> list[dict]:
        return [v for k, v in sorted(self.fields.items()) if k.startswith("p:")]

    def replicas(self) -> set[str]:
        """The gateway replicas holding connections to this session."""
        return {r for p in self.participants() for r in p["connections"]}

    def viewport(self, vid: str) -> dict | None:
        return self.fields.get(f"vp:{vid}")

    def viewports(self) -> dict[str, dict]:
        return {k[3:]: v for k, v in self.fields.items() if k.startswith("vp:")}

    def annotation(self, aid: str) -> dict | None:
        return self.fields.get(f"ann:{aid}")

    def invitation(self, jti: str) -> dict | None:
        return self.fields.get(f"inv:{jti}")

    def public(self) -> dict:
        """What a participant is shown: everything but the invitations' secrets."""
        return {
            "session_id": self.session_id,
            "study_uid": self.study_uid,
            "series": list(self.meta["series"]),
            "title": self.meta["title"],
            "owner": self.owner,
            "presenter": self.presenter,
            "requests": list(self.meta["requests"]),
            "ended": self.ended,
            "layout": self.fields.get("layout"),
            "crosshair": self.fields.get("crosshair"),
            "participants": [{**p, "connections": online(p)} for p in self.participants()],
            "viewports": self.viewports(),
            "annotations": sorted(
                (v for k, v in self.fields.items() if k.startswith("ann:")), key=lambda a: a["created_seq"]
            ),
            "pointers": {k[4:]: v for k, v in self.fields.items() if k.startswith("ptr:")},
        }


def new_session_fields(
    session_id: str, study_uid: str, series: list[str], owner: dict, title: str = ""
) -> dict[str, Any]:
    """Fields of a fresh session whose owner is its first participant and presenter."""
    if not study_uid:
        raise InvalidCommand("a session needs a study", field="study_uid")
    pid = owner["id"]
    return {
        "meta": {
            "id": session_id,
            "study_uid": study_uid,
            "series": sorted(set(series)),
            "title": title[:200],
            "owner": pid,
            "presenter": pid,
            "requests": [],
            "ended": False,
            "ended_by": None,
        },
        f"p:{pid}": {**owner, "may_control": True, "following": True},
    }


def online(record: dict | None) -> int:
    """How many connections a participant has, over all gateway replicas."""
    return sum(record["connections"].values()) if record else 0


def participant_record(pid: str, name: str, kind: str, admin: bool, may_control: bool) -> dict:
    return {
        "id": pid,
        "name": name[:80],
        "kind": kind,
        "admin": admin,
        "may_control": may_control,
        "connections": {},  # gateway replica id -> open connections there
    }


def decide(state: SessionState, actor: str, command: dict, seq: int) -> Change:
    """The change `command` from participant `actor` makes to `state` (whose sequence number is seq)."""
    if not isinstance(command, dict):
        raise InvalidCommand("a command must be a JSON object", field="type")
    kind = command.get("type")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise InvalidCommand(f"unknown command type {kind!r}", field="type")
    if state.ended:
        raise SessionEnded("the session has ended")
    me = state.participant(actor)
    if kind == "join" and me is None:
        me = command["participant"]
    elif kind in ("invite_attempt", "invite_admitted", "replica_gone", "presence"):
        me = _SYSTEM
    if me is None:
        raise PermissionDenied(f"{actor} is not a participant of this session")
    return handler(state, me, command, seq)


def _event(event_type: str, me: dict, **data) -> dict:
    return {"type": event_type, "actor": me["id"], **data}


def _meta(state: SessionState, **changes) -> dict:
    return {"meta": {**state.meta, **changes}}


def _require_presenter(state: SessionState, me: dict, what: str) -> None:
    if state.presenter != me["id"]:
        raise PermissionDenied(f"only the presenter can change the {what}")


def _is_manager(state: SessionState, me: dict) -> bool:
    """The owner and admins manage the session: take control, grant it, end the session."""
    return me["id"] == state.owner or me["admin"]


def _check_series(state: SessionState, uids: set[str], field: str) -> None:
    allowed = set(state.meta["series"])
    for uid in sorted(uids):
        if uid not in allowed:
            raise PermissionDenied(f"series {uid} is not part of this session's study", field=field)


def _target(state: SessionState, command: dict, key: str) -> dict:
    pid = command.get(key)
    if not isinstance(pid, str):
        raise InvalidCommand(f"{key} must name a participant", field=key)
    target = state.participant(pid)
    if target is None:
        raise InvalidCommand(f"{pid} is not a participant of this session", field=key)
    return target


def _presenter_change(state: SessionState, me: dict, to: str | None, reason: str) -> Change:
    requests = [p for p in state.meta["requests"] if p != to]
    return Change(
        _event("presenter", me, presenter=to, previous=state.presenter, reason=reason),
        _meta(state, presenter=to, requests=requests),
    )


# -- handlers: each takes (state, acting participant, command, seq) and returns a Change ----------


def _layout(state, me, command, seq):
    _require_presenter(state, me, "layout")
    layout = models.parse(models.Layout, command.get("layout"), "layout").model_dump()
    return Change(_event("layout", me, layout=layout), {"layout": layout})


def _viewport(state, me, command, seq):
    _require_presenter(state, me, "viewports")
    vid = models.parse_id(command.get("viewport_id"), "viewport_id")
    view = models.parse(models.ViewportState, command.get("state"), "state")
    _check_series(state, view.series_uids(), "state.series_uid")
    data = view.model_dump(mode="json")
    return Change(_event("viewport", me, viewport_id=vid, state=data), {f"vp:{vid}": data})


def _crosshair(state, me, command, seq):
    _require_presenter(state, me, "crosshair")
    value = models.parse_point(command.get("point"), "point")
    return Change(_event("crosshair", me, point=value), {"crosshair": value})


def _request_control(state, me, command, seq):
    if state.presenter == me["id"]:
        raise InvalidCommand("you are already the presenter", field="type")
    if not me["may_control"]:
        raise PermissionDenied("a guest can take control only when the owner grants it")
    if not state.presenter_online:
        # Nobody is driving: the first eligible participant to ask gets control at once.
        return _presenter_change(state, me, me["id"], "vacant")
    if me["id"] in state.meta["requests"]:
        raise InvalidCommand("control is already requested", field="type")
    requests = [*state.meta["requests"], me["id"]]
    return Change(_event("control_requested", me, by=me["id"]), _meta(state, requests=requests))


def _hand_over(state, me, command, seq):
    if state.presenter != me["id"] and not _is_manager(state, me):
        raise PermissionDenied("only the presenter can hand over control")
    target = _target(state, command, "to")
    if not target["may_control"]:
        raise PermissionDenied(f"{target['name']} may not take control (a guest needs a grant)", field="to")
    if not online(target):
        raise InvalidCommand(f"{target['name']} is not connected", field="to")
    return _presenter_change(state, me, target["id"], "hand_over")


def _take_control(state, me, command, seq):
    if not _is_manager(state, me):
        raise PermissionDenied("only the owner or an admin can take control; ask for it instead")
    if state.presenter == me["id"]:
        raise InvalidCommand("you are already the presenter", field="type")
    return _presenter_change(state, me, me["id"], "taken")


def _grant_control(state, me, command, seq):
    if not _is_manager(state, me):
        raise PermissionDenied("only the owner or an admin can grant control")
    target = _target(state, command, "participant_id")
    allowed = command.get("allowed", True)
    if not isinstance(allowed, bool):
        raise InvalidCommand("allowed must be true or false", field="allowed")
    if target["kind"] != "guest" and not allowed:
        raise InvalidCommand("signed-in participants may always ask for control", field="participant_id")
    patch = {f"p:{target['id']}": {**target, "may_control": allowed}}
    event = _event("grant", me, participant_id=target["id"], may_control=allowed)
    if not allowed:
        requests = [p for p in state.meta["requests"] if p != target["id"]]
        presenter = state.owner if state.presenter == target["id"] else state.presenter
        patch.update(_meta(state, requests=requests, presenter=presenter))
        if presenter != state.presenter:
            event["presenter"] = presenter
    return Change(event, patch)


def _follow(following: bool):
    def handler(state, me, command, seq):
        if me["following"] == following:
            raise InvalidCommand("already following" if following else "already detached", field="type")
        return Change(
            _event("follow" if following else "detach", me, participant_id=me["id"]),
            {f"p:{me['id']}": {**me, "following": following}},
        )

    return handler


def _pointer(state, me, command, seq):
    pointer = models.parse(
        models.Pointer, {k: command.get(k) for k in ("viewport_id", "point")}, "pointer"
    ).model_dump(mode="json")
    value = {**pointer, "name": me["name"], "participant_id": me["id"]}
    field = f"ptr:{me['id']}"
    return Change(_event("pointer", me, pointer=value), {field: value if pointer["point"] else None})


def _annotate(state, me, command, seq):
    """The command carries `annotation` (validated input) and `measurement` (computed by the hub)."""
    shape = models.parse(models.AnnotationInput, command.get("annotation"), "annotation")
    if hasattr(shape, "series_uid"):
        _check_series(state, {shape.series_uid}, "annotation.series_uid")
    count = sum(1 for k in state.fields if k.startswith("ann:"))
    if count >= MAX_ANNOTATIONS:
        raise InvalidCommand(f"a session holds at most {MAX_ANNOTATIONS} annotations", field="annotation")
    aid = uuid.uuid4().hex[:12]
    record = {
        "id": aid,
        "author": me["id"],
        "author_name": me["name"],
        "created_seq": seq + 1,
        **shape.model_dump(mode="json"),
        "measurement": command.get("measurement"),
    }
    return Change(_event("annotation", me, annotation=record), {f"ann:{aid}": record})


def _delete_annotation(state, me, command, seq):
    aid = command.get("annotation_id")
    ann = state.annotation(aid) if isinstance(aid, str) else None
    if ann is None:
        raise InvalidCommand(f"no annotation {aid!r} in this session", field="annotation_id")
    if ann["author"] != me["id"] and state.presenter != me["id"] and not _is_manager(state, me):
        raise PermissionDenied("only its author, the presenter or the owner can delete an annotation")
    return Change(_event("annotation_deleted", me, annotation_id=aid), {f"ann:{aid}": None})


def _end(state, me, command, seq):
    if not _is_manager(state, me):
        raise PermissionDenied("only the owner or an admin can end the session")
    return Change(
        _event("ended", me, by=me["id"]), _meta(state, ended=True, ended_by=me["id"], presenter=None)
    )


# -- commands the hub issues on a participant's behalf ----------------------------------------------


def _connections(me: dict, replica: str, delta: int) -> dict:
    counts = dict(me.get("connections", {}))
    n = counts.get(replica, 0) + delta
    if n > 0:
        counts[replica] = n
    else:
        counts.pop(replica, None)
    return counts


def _join(state, me, command, seq):
    record = {**me, "connections": _connections(me, command["replica"], +1)}
    record.setdefault("following", True)
    patch = {f"p:{me['id']}": record}
    event = _event("joined", me, participant={**record, "connections": online(record)})
    if me["id"] == state.owner and not state.presenter_online:
        # The owner coming back takes the wheel of an undriven session.
        patch.update(_meta(state, presenter=me["id"]))
        event["presenter"] = me["id"]
    return Change(event, patch)


def _gone(state: SessionState, records: dict[str, dict], event: dict) -> Change:
    """Patch participants to `records` (their new connection counts); those now offline lose their
    pointer and control requests, and if the presenter is among them the owner (when here) or nobody
    drives."""
    patch: dict[str, Any] = {f"p:{pid}": record for pid, record in records.items()}
    offline = {pid for pid, record in records.items() if not online(record)}
    if offline:
        for pid in offline:
            patch[f"ptr:{pid}"] = None
        requests = [p for p in state.meta["requests"] if p not in offline]
        presenter = state.presenter
        if presenter in offline:
            owner = records.get(state.owner, state.participant(state.owner))
            presenter = state.owner if online(owner) else None
            event["presenter"] = presenter
        patch.update(_meta(state, requests=requests, presenter=presenter))
    return Change(event, patch)


def _leave(state, me, command, seq):
    record = {**me, "connections": _connections(me, command["replica"], -1)}
    event = _event("left", me, participant_id=me["id"], connections=online(record))
    return _gone(state, {me["id"]: record}, event)


def _presence(state, me, command, seq):
    """Set how many connections a replica holds for each participant (after that replica was out of
    touch with the bus long enough to be counted as gone). The event's `online` says how many each
    of them has now, over all replicas."""
    replica, counts = command["replica"], command["counts"]
    records = {}
    for pid, n in counts.items():
        p = state.participant(pid)
        held = p["connections"].get(replica, 0) if p is not None else n
        if held != n:
            records[pid] = {**p, "connections": _connections(p, replica, n - held)}
    if not records:
        raise InvalidCommand("presence already up to date", field="counts")
    online_now = {pid: online(r) for pid, r in records.items()}
    return _gone(state, records, _event("presence", me, participants=sorted(records), online=online_now))


def _replica_gone(state, me, command, seq):
    """A gateway replica stopped answering: the connections it held are gone (`online`: how many
    each of those participants still has, through other replicas)."""
    replica = command["replica"]
    records = {
        p["id"]: {**p, "connections": _connections(p, replica, -p["connections"][replica])}
        for p in state.participants()
        if replica in p["connections"]
    }
    if not records:
        raise InvalidCommand(f"replica {replica} holds no connections here", field="replica")
    online_now = {pid: online(r) for pid, r in records.items()}
    event = _event("replica_gone", me, replica=replica, left=sorted(records), online=online_now)
    return _gone(state, records, event)


def _invite(state, me, command, seq):
    # A guest in control presents but does not invite: an invitation would outlive their own.
    if (state.presenter != me["id"] or me["kind"] != "user") and not _is_manager(state, me):
        raise PermissionDenied("only the owner, an admin or a signed-in presenter can invite")
    record = command["invitation"]
    event = _event("invited", me, kind=record["kind"], may_control=record["may_control"])
    return Change(event, {f"inv:{record['jti']}": record})


def _invite_attempt(state, me, command, seq):
    """A PIN about to be checked counts as wrong until it is found right (invite_admitted), so
    guesses sent all at once get no more tries than guesses sent one by one: once MAX_INVITE_FAILURES
    are counted the invitation is revoked and further attempts are refused before any check."""
    jti = command["jti"]
    record = state.invitation(jti)
    if record is None or record["revoked"]:
        raise PermissionDenied(REVOKED, field="token")
    return _count_pin(jti, record, record["failures"] + 1, "invite_attempt", me)


def _invite_admitted(state, me, command, seq):
    """The PIN of an attempt was right: it no longer counts."""
    jti = command["jti"]
    record = state.invitation(jti)
    if record is None:
        raise InvalidCommand(f"no invitation {jti}", field="jti")
    return _count_pin(jti, record, max(0, record["failures"] - 1), "invite_admitted", me)


def _count_pin(jti: str, record: dict, failures: int, event_type: str, me: dict) -> Change:
    updated = {**record, "failures": failures, "revoked": failures >= MAX_INVITE_FAILURES}
    event = _event(event_type, me, failures=failures, revoked=updated["revoked"])
    return Change(event, {f"inv:{jti}": updated})


_HANDLERS = {
    "layout": _layout,
    "viewport": _viewport,
    "crosshair": _crosshair,
    "request_control": _request_control,
    "hand_over": _hand_over,
    "take_control": _take_control,
    "grant_control": _grant_control,
    "detach": _follow(False),
    "follow": _follow(True),
    "pointer": _pointer,
    "annotate": _annotate,
    "delete_annotation": _delete_annotation,
    "end": _end,
    "join": _join,
    "leave": _leave,
    "invite": _invite,
    "invite_attempt": _invite_attempt,
    "invite_admitted": _invite_admitted,
    "replica_gone": _replica_gone,
    "presence": _presence,
}
assert CLIENT_COMMANDS <= _HANDLERS.keys()
