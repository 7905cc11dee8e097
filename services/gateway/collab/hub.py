"""SessionHub: the sessions one gateway serves, over a Bus shared with the other replicas.

For each session with a participant connected here, the hub keeps a Room: a copy of the state kept
current from the bus (one subscription per session per gateway), the local connections, and one
ViewportFeed per viewport when the gateway renders. A command is decided against the local copy
and committed with compare-and-set on the sequence number; if another replica got there first the
copy catches up and the command is decided again. Events reach each connection through a bounded
outbox: one that falls behind is not waited for, it is sent the whole state instead of what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from argon2 import PasswordHasher

from voxcast.config import Settings
from voxcast.volume import Volume

from . import measure, models
from .bus import Bus, Published, Resync, Snapshot, Subscription, make_bus
from .errors import (
    BusUnavailable,
    CollabError,
    Conflict,
    InvalidCommand,
    PermissionDenied,
    SessionEnded,
    SessionNotFound,
)
from .fanout import LatestFrames, Renderer, ViewportFeed
from .invites import Grant, InviteCodec
from .state import CLIENT_COMMANDS, SessionState, decide, new_session_fields, participant_record

log = logging.getLogger(__name__)

# Loads a series of the session's study as a Volume (the gateway fetches it from the catalog).
VolumeLoader = Callable[[str], Awaitable[Volume]]
COMMIT_ATTEMPTS = 50


@dataclass(frozen=True)
class Identity:
    """Who connects: a signed-in user (participant id "u:<user id>") or a guest ("g:<random>")."""

    participant_id: str
    name: str
    kind: Literal["user", "guest"]
    admin: bool = False

    @classmethod
    def user(cls, user_id: str, name: str, *, admin: bool = False) -> Identity:
        return cls(f"u:{user_id}", name or user_id, "user", admin)

    @classmethod
    def guest(cls, grant: Grant, name: str) -> Identity:
        if grant.kind != "guest":
            raise InvalidCommand("this grant is not for a guest", field="token")
        return cls(grant.participant_id, name or "Guest", "guest")


class Outbox:
    """Events waiting for one connection. Bounded: past the bound the backlog is dropped and the
    connection is sent the whole state instead, so a stalled reader costs the others nothing."""

    def __init__(self, limit: int) -> None:
        self._items: deque[dict] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.needs_state = True  # the first message of every connection is the state
        self.closed_reason: str | None = None
        self.resyncs = 0

    def push(self, event: dict) -> None:
        if self.needs_state or self.closed_reason is not None:
            return
        if len(self._items) >= self._limit:
            self._items.clear()
            self.needs_state = True
            self.resyncs += 1
        else:
            self._items.append(event)
        self._ready.set()

    def reset(self) -> None:
        """Drop the backlog: the next message is the whole state."""
        self._items.clear()
        self.needs_state = True
        self._ready.set()

    def close(self, reason: str) -> None:
        """No more events after those queued; then the reader is told `reason`."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._ready.set()

    async def wait(self) -> None:
        while not self._items and not self.needs_state and self.closed_reason is None:
            self._ready.clear()
            await self._ready.wait()

    def pop(self) -> dict | None:
        return self._items.popleft() if self._items else None


@dataclass(eq=False)
class Participant:
    """One connection of a participant to a session (a person may have several)."""

    room: Room
    identity: Identity
    outbox: Outbox
    frames: LatestFrames = field(default_factory=LatestFrames)
    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    closed: bool = False

    @property
    def id(self) -> str:
        return self.identity.participant_id

    @property
    def session_id(self) -> str:
        return self.room.session_id

    async def receive(self) -> dict:
        """The next message for this connection: {"type": "state", ...} first (and after a resync or
        a backlog overflow), then events in sequence order, each with its "seq". After the
        "ended" event, raises SessionEnded."""
        await self.outbox.wait()
        if self.outbox.needs_state:
            self.outbox.needs_state = False
            return self.room.state_message()
        event = self.outbox.pop()
        if event is None:
            raise SessionEnded(self.outbox.closed_reason or "left the session")
        return event

    async def send(self, command: dict) -> dict:
        """Carry out a participant's command; returns its event (with "seq") or raises CollabError."""
        if self.closed:
            raise SessionEnded("this connection has left the session")
        kind = command.get("type") if isinstance(command, dict) else None
        if kind not in CLIENT_COMMANDS:
            raise InvalidCommand(f"unknown command type {kind!r}", field="type")
        if kind == "annotate":
            command = await self.room.measured(command)
        return await self.room.submit(self.id, command)

    async def invite(
        self,
        kind: Literal["user", "guest"],
        *,
        pin: str | None = None,
        may_control: bool = False,
        minutes: int = 240,
    ) -> str:
        """An invitation token into this session (owner, admin or presenter only)."""
        room = self.room
        token, record = room.hub.invites.issue(
            room.session_id, room.state.study_uid, kind, pin=pin, may_control=may_control, minutes=minutes
        )
        await room.submit(self.id, {"type": "invite", "invitation": record})
        return token

    async def leave(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.room.disconnect(self)


class Room:
    """A session as this gateway holds it."""

    def __init__(self, hub: SessionHub, session_id: str, snapshot: Snapshot, sub: Subscription) -> None:
        self.hub = hub
        self.session_id = session_id
        self.seq = snapshot.seq
        self.state = SessionState(snapshot.fields)
        self._sub = sub
        self._lock = asyncio.Lock()
        self._advanced = asyncio.Event()
        self.connections: set[Participant] = set()
        self.feeds: dict[str, ViewportFeed] = {}
        self._missing: set[str] = set()
        self._tasks = [
            asyncio.create_task(self._follow_bus(), name=f"voxcast-room-{session_id}"),
            asyncio.create_task(self._keep_alive(), name=f"voxcast-room-keepalive-{session_id}"),
        ]
        self.closed = False

    def state_message(self) -> dict:
        return {"type": "state", "seq": self.seq, "state": self.state.public()}

    # -- applying changes, from this gateway's commits or from the bus ------------------------------

    def _apply(self, seq: int, event: dict, patch: dict) -> dict:
        event = {**event, "seq": seq}
        if seq <= self.seq:
            return event  # already applied: our own commit, echoed by the bus
        fields = dict(self.state.fields)
        for key, value in patch.items():
            if value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
        self.state = SessionState(fields)
        self.seq = seq
        self._advanced.set()
        self._advanced = asyncio.Event()
        for conn in list(self.connections):
            conn.outbox.push(event)
        self._update_feeds()
        if self.state.ended:
            self._finish("the session has ended")
        elif event["type"] == "replica_gone" and event["replica"] == self.hub.replica_id and self.connections:
            # We were taken for dead (a missed heartbeat) but are here: say so.
            self._tasks.append(asyncio.create_task(self._repair_presence()))
        return event

    def _adopt(self, snapshot: Snapshot, reason: str) -> None:
        changed = snapshot.seq != self.seq or snapshot.fields != self.state.fields
        self.state = SessionState(snapshot.fields)
        self.seq = snapshot.seq
        self._advanced.set()
        self._advanced = asyncio.Event()
        if changed:
            log.info("session %s resynchronised at seq %d (%s)", self.session_id, self.seq, reason)
            for conn in list(self.connections):
                conn.outbox.reset()
            self._update_feeds()
            if self.connections and not self.state.ended:
                # A task of its own: submitting waits on this room's bus reader, which may be our caller.
                self._tasks.append(asyncio.create_task(self._repair_presence()))
        if self.state.ended:
            self._finish("the session has ended")

    async def resync(self, reason: str) -> None:
        """Reload the state from the bus; if the bus lost it (or holds older), put ours back."""
        snapshot = await self.hub.bus.load(self.session_id)
        if snapshot is None or snapshot.seq < self.seq:
            mine = Snapshot(self.seq, self.state.fields)
            if await self.hub.bus.restore(self.session_id, mine, self.hub.ttl_for(self.state)):
                log.info("session %s restored to the bus at seq %d", self.session_id, self.seq)
            snapshot = await self.hub.bus.load(self.session_id)
            if snapshot is None:
                raise BusUnavailable("the session could not be restored")
        self._adopt(snapshot, reason)

    async def _follow_bus(self) -> None:
        while True:
            message = await self._sub.get()
            try:
                if isinstance(message, Published) and message.seq <= self.seq + 1:
                    self._apply(message.seq, message.event, message.patch)
                else:
                    reason = message.reason if isinstance(message, Resync) else f"gap before {message.seq}"
                    await self.resync(reason)
            except BusUnavailable as exc:
                log.warning("session %s: resync postponed: %s", self.session_id, exc)
            except Exception:
                log.exception("session %s: bad message from the bus", self.session_id)

    async def _keep_alive(self) -> None:
        """While people are here: push the expiry back, notice a store that lost the session, and
        clear the connections of replicas that stopped answering."""
        while True:
            await asyncio.sleep(self.hub.keepalive_s)
            try:
                if not await self.hub.bus.touch(self.session_id, self.hub.ttl_for(self.state)):
                    await self.resync("the store lost the session")
                await self._clear_dead_replicas()
            except (BusUnavailable, SessionEnded):
                pass
            except Exception:
                log.exception("session %s: keep-alive failed", self.session_id)

    async def _clear_dead_replicas(self) -> None:
        """A replica missing its heartbeat for two checks in a row (a Redis restart wipes the
        heartbeats of live ones too, until their next beat) has its connections cleared."""
        others = self.state.replicas() - {self.hub.replica_id}
        missing = others - await self.hub.bus.live_replicas(others)
        for replica in missing & self._missing:
            with contextlib.suppress(InvalidCommand):
                await self.submit("", {"type": "replica_gone", "replica": replica})
        self._missing = missing

    async def _repair_presence(self) -> None:
        """Put back this replica's connections if the state lost them (we were cut off too long)."""
        counts: dict[str, int] = {}
        for conn in self.connections:
            counts[conn.id] = counts.get(conn.id, 0) + 1
        try:
            await self.hub._beat()
            await self.submit("", {"type": "presence", "replica": self.hub.replica_id, "counts": counts})
        except InvalidCommand:
            pass  # nothing to repair
        except CollabError as exc:
            log.warning("session %s: presence not repaired: %s", self.session_id, exc)

    # -- commands ---------------------------------------------------------------------------------

    async def submit(self, actor: str, command: dict) -> dict:
        if self.closed:
            raise SessionEnded("the session has ended")
        for _ in range(COMMIT_ATTEMPTS):
            async with self._lock:
                seq = self.seq
                try:
                    change = decide(self.state, actor, command, seq)
                except CollabError:
                    # Refused by our copy: make sure the copy was not behind another replica's
                    # change (say, the hand-over that made this participant the presenter).
                    current = await self.hub.bus.current_seq(self.session_id)
                    if current is None or current <= seq:
                        raise
                else:
                    ttl = self.hub.ended_ttl_s if change.event["type"] == "ended" else self.hub.ttl_s
                    ok, current = await self.hub.bus.commit(
                        self.session_id, seq, change.event, change.patch, ttl
                    )
                    if ok:
                        return self._apply(current, change.event, change.patch)
                    if current is None:
                        raise SessionNotFound("the session is gone from the store")
            # Another replica committed first: let our copy catch up, then decide again.
            await self._reach(current)
        raise Conflict("the session is changing too fast; try again")

    async def _reach(self, seq: int) -> None:
        """Wait until our copy is at `seq` or later; reload it if the bus seems to lag."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while self.seq < seq:
            advanced = self._advanced
            try:
                await asyncio.wait_for(advanced.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                await self.resync("copy behind the store")
                return

    async def measured(self, command: dict) -> dict:
        """An annotate command with the server's measurement of it (clients cannot supply one)."""
        shape = models.parse(models.AnnotationInput, command.get("annotation"), "annotation")
        out = {"type": "annotate", "annotation": shape.model_dump(mode="json"), "measurement": None}
        if shape.kind == "arrow":
            return out
        if shape.series_uid not in self.state.meta["series"]:
            message = f"series {shape.series_uid} is not part of this session's study"
            raise PermissionDenied(message, field="annotation.series_uid")
        if self.hub.volume_loader is None:
            raise InvalidCommand("this gateway cannot load volumes to measure", field="annotation")
        volume = await self.hub.volume_loader(shape.series_uid)
        if shape.kind == "line":
            out["measurement"] = measure.measure_line(volume, shape.start, shape.end)
        else:
            out["measurement"] = await asyncio.to_thread(
                measure.measure_ellipse, volume, shape.center, shape.axis_a, shape.axis_b
            )
        return out

    # -- connections and frames -------------------------------------------------------------------

    async def connect(self, identity: Identity, may_control: bool) -> Participant:
        conn = Participant(self, identity, Outbox(self.hub.outbox_limit))
        record = participant_record(
            identity.participant_id, identity.name, identity.kind, identity.admin, may_control
        )
        self.connections.add(conn)
        try:
            command = {"type": "join", "participant": record, "replica": self.hub.replica_id}
            await self.submit(identity.participant_id, command)
        except BaseException:
            self.connections.discard(conn)
            await self._close_if_empty()
            raise
        self._update_feeds()
        return conn

    async def disconnect(self, conn: Participant) -> None:
        self.connections.discard(conn)
        conn.outbox.close("left the session")
        conn.frames.close()
        for feed in self.feeds.values():
            feed.detach(conn.frames)
        if not self.closed:
            try:
                await self.submit(conn.id, {"type": "leave", "replica": self.hub.replica_id})
            except CollabError as exc:
                log.warning("session %s: %s left without notice: %s", self.session_id, conn.id, exc)
        await self._close_if_empty()

    def _update_feeds(self) -> None:
        """Keep one render per session viewport while someone here follows the presenter."""
        if self.hub.renderer is None or self.closed:
            return
        followers = [
            c for c in self.connections if (self.state.participant(c.id) or {}).get("following", False)
        ]
        for vid, view in self.state.viewports().items():
            feed = self.feeds.get(vid)
            if feed is None:
                if not followers:
                    continue
                feed = self.feeds[vid] = ViewportFeed(vid, self.hub.renderer)
            for conn in self.connections:
                if conn in followers:
                    if conn.frames not in feed:
                        feed.attach(conn.frames)
                else:
                    feed.detach(conn.frames)
            if feed.followers:
                feed.show(view)

    def _finish(self, reason: str) -> None:
        """The session ended: every connection gets the ended event, then its stream stops."""
        if self.closed:
            return
        self.closed = True
        for conn in list(self.connections):
            conn.outbox.close(reason)
            conn.frames.close()
        asyncio.get_running_loop().create_task(self.close())

    async def _close_if_empty(self) -> None:
        if not self.connections:
            await self.close()

    async def close(self) -> None:
        self.closed = True
        self.hub._rooms.pop(self.session_id, None)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for feed in self.feeds.values():
            await feed.close()
        await self._sub.close()

    @property
    def renders(self) -> int:
        return sum(f.renders for f in self.feeds.values())


class SessionHub:
    """Entry point for the gateway: create sessions, admit people, hand out their connections."""

    def __init__(
        self,
        bus: Bus,
        secret_key: str,
        *,
        volume_loader: VolumeLoader | None = None,
        renderer: Renderer | None = None,
        ttl_s: float = 4 * 3600,
        ended_ttl_s: float = 600,
        keepalive_s: float | None = None,
        outbox_limit: int = 256,
        pin_hasher: PasswordHasher | None = None,
    ) -> None:
        self.bus = bus
        self.invites = InviteCodec(secret_key, pin_hasher)
        self.volume_loader = volume_loader
        self.renderer = renderer
        self.ttl_s = ttl_s
        self.ended_ttl_s = ended_ttl_s
        self.keepalive_s = keepalive_s if keepalive_s is not None else min(5.0, ttl_s / 3)
        # This gateway replica, as named in participants' connection counts; it is declared gone
        # when its heartbeat has not been renewed for three keep-alive periods.
        self.replica_id = uuid.uuid4().hex[:12]
        self._heartbeat: asyncio.Task | None = None
        self.outbox_limit = outbox_limit
        self._rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._owns_bus = False

    @classmethod
    def from_settings(cls, settings: Settings, **kw) -> SessionHub:
        """A hub on the bus the settings ask for (Redis when VOXCAST_REDIS_URL is set); it closes
        the bus when it closes."""
        hub = cls(make_bus(settings), settings.secret_key, **kw)
        hub._owns_bus = True
        return hub

    def ttl_for(self, state: SessionState) -> float:
        return self.ended_ttl_s if state.ended else self.ttl_s

    async def create_session(
        self, owner: Identity, study_uid: str, series_uids: list[str], title: str = ""
    ) -> str:
        """A new session on a study; its owner (a signed-in user) is its first presenter."""
        if owner.kind != "user":
            raise PermissionDenied("only a signed-in user can start a session")
        if not series_uids:
            raise InvalidCommand("a session needs the series of its study", field="series_uids")
        session_id = uuid.uuid4().hex
        record = participant_record(owner.participant_id, owner.name, "user", owner.admin, True)
        fields = new_session_fields(session_id, study_uid, series_uids, record, title)
        if not await self.bus.create(session_id, fields, self.ttl_s):
            raise Conflict("session id collision; try again")
        return session_id

    async def _beat(self) -> None:
        await self.bus.heartbeat(self.replica_id, 3 * self.keepalive_s)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await self._beat()
            except BusUnavailable:
                pass

    async def _room(self, session_id: str) -> Room:
        room = self._rooms.get(session_id)
        if room is not None and not room.closed:
            return room
        if self._heartbeat is None:
            await self._beat()  # alive before holding any connection
            self._heartbeat = asyncio.create_task(self._heartbeat_forever(), name="voxcast-collab-heartbeat")
        lock = self._opening.setdefault(session_id, asyncio.Lock())
        async with lock:
            room = self._rooms.get(session_id)
            if room is not None and not room.closed:
                return room
            # Subscribe before loading, so no change falls between the snapshot and the stream.
            sub = await self.bus.subscribe(session_id)
            try:
                snapshot = await self.bus.load(session_id)
            except BaseException:
                await sub.close()
                raise
            if snapshot is None:
                await sub.close()
                raise SessionNotFound(f"no session {session_id}")
            room = self._rooms[session_id] = Room(self, session_id, snapshot, sub)
            return room

    async def state(self, session_id: str) -> SessionState:
        """The session's current state, read from the bus (which every replica's copy follows)."""
        snapshot = await self.bus.load(session_id)
        if snapshot is None:
            raise SessionNotFound(f"no session {session_id}")
        return SessionState(snapshot.fields)

    async def redeem(self, token: str, *, pin: str | None = None, user: Identity | None = None) -> Grant:
        """Check an invitation (and the guest's PIN) and admit its holder. A user invitation needs a
        signed-in `user`; a guest one gives a fresh guest participant id."""
        claims = self.invites.decode(token)
        state = await self.state(claims.session_id)
        if state.ended:
            raise SessionEnded("the session has ended")
        record = state.invitation(claims.jti)
        if record is None or record["revoked"] or state.study_uid != claims.study_uid:
            raise PermissionDenied("this invitation is no longer valid", field="token")
        if claims.kind == "user":
            if user is None or user.kind != "user":
                raise PermissionDenied("this invitation is for signed-in users", field="token")
            return Grant(claims.session_id, claims.study_uid, "user", user.participant_id, True)
        if not await asyncio.to_thread(self.invites.pin_matches, record, pin):
            room = await self._room(claims.session_id)
            try:
                await room.submit("", {"type": "invite_failure", "jti": claims.jti})
            finally:
                await room._close_if_empty()
            raise PermissionDenied("wrong PIN", field="pin")
        guest_id = f"g:{uuid.uuid4().hex[:16]}"
        return Grant(claims.session_id, claims.study_uid, "guest", guest_id, record["may_control"])

    async def join(self, session_id: str, identity: Identity, grant: Grant | None = None) -> Participant:
        """Connect `identity` to the session. Allowed for its owner, admins, anyone already admitted
        (reconnecting) and the holder of a Grant for this session."""
        room = await self._room(session_id)
        try:
            state = room.state
            if state.ended:
                raise SessionEnded("the session has ended")
            known = state.participant(identity.participant_id)
            may_control = identity.kind == "user"
            if grant is not None:
                if grant.session_id != session_id or grant.participant_id != identity.participant_id:
                    raise PermissionDenied("this grant is for another session or person", field="token")
                may_control = may_control or grant.may_control
            elif known is None and not identity.admin:
                raise PermissionDenied("an invitation is needed to join this session", field="token")
            if known is not None:
                may_control = known["may_control"]
            return await room.connect(identity, may_control)
        except BaseException:
            await room._close_if_empty()
            raise

    def renders(self, session_id: str) -> int:
        """Renders started by this gateway for the session (one per viewport view state)."""
        room = self._rooms.get(session_id)
        return room.renders if room is not None else 0

    async def close(self) -> None:
        for room in list(self._rooms.values()):
            await room.close()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._owns_bus:
            await self.bus.close()
