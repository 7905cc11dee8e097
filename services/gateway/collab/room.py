"""A session as one gateway holds it: a copy of the state kept current from the bus (one
subscription per session per gateway), the local connections, and one ViewportFeed per viewport.

A command is decided against the local copy and committed with compare-and-set on the sequence
number; if another replica got there first the copy catches up and the command is decided again.
Events reach each connection through its bounded outbox, so a connection that falls behind is
sent the whole state instead of what it missed and nobody waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from . import measure, models
from .bus import Published, Resync, Snapshot, Subscription
from .errors import (
    BusUnavailable,
    CollabError,
    Conflict,
    InvalidCommand,
    PermissionDenied,
    SessionEnded,
    SessionNotFound,
    VolumeUnavailable,
)
from .fanout import SettledFrames, ViewportFeed
from .participant import Identity, Outbox, Participant
from .state import UNORDERED_COMMANDS, SessionState, decide, participant_record

if TYPE_CHECKING:
    from .hub import SessionHub

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 50


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
        codec = hub.frame_codec
        self._settled = SettledFrames(hub.bus, session_id, codec, hub.ttl_s) if codec is not None else None
        self._missing: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._spawn(self._follow_bus(), f"voxcast-room-{session_id}")
        self._spawn(self._keep_alive(), f"voxcast-room-keepalive-{session_id}")
        self.closed = False

    def _spawn(self, coro, name: str | None = None) -> None:
        """Run `coro` as this room's task (kept referenced until done, cancelled when it closes)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            self._spawn(self._repair_presence())
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
                self._spawn(self._repair_presence())
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
        if command.get("type") in UNORDERED_COMMANDS:
            return await self._submit_unordered(actor, command)
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
                # The store lost the session (Redis restarted empty): put ours back, then retry.
                await self.resync("the store lost the session")
            else:
                # Another replica committed first: let our copy catch up, then decide again.
                await self._reach(current)
        raise Conflict("the session is changing too fast; try again")

    async def _submit_unordered(self, actor: str, command: dict) -> dict:
        """Decided on our copy, committed at whatever the sequence number is; our copy applies it
        when the bus brings it back, in order."""
        change = decide(self.state, actor, command, self.seq)
        ttl = self.hub.ttl_s
        ok, seq = await self.hub.bus.commit(self.session_id, None, change.event, change.patch, ttl)
        if not ok:
            await self.resync("the store lost the session")
            ok, seq = await self.hub.bus.commit(self.session_id, None, change.event, change.patch, ttl)
            if not ok:
                raise SessionNotFound("the session is gone from the store")
        return {**change.event, "seq": seq}

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
        try:
            volume = await self.hub.volume_loader(shape.series_uid)
        except Exception as exc:
            log.warning("loading series %s to measure failed: %r", shape.series_uid, exc)
            raise VolumeUnavailable(
                f"series {shape.series_uid} cannot be loaded to measure it", field="annotation.series_uid"
            ) from exc
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
                feed = self.feeds[vid] = ViewportFeed(self.session_id, vid, self.hub.renderer, self._settled)
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
        self.hub._spawn(self.close())

    async def _close_if_empty(self) -> None:
        if not self.connections:
            await self.close()

    async def close(self) -> None:
        self.closed = True
        if self.hub._rooms.get(self.session_id) is self:
            del self.hub._rooms[self.session_id]
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for feed in self.feeds.values():
            await feed.close()
        await self._sub.close()

    @property
    def renders(self) -> int:
        return sum(f.renders for f in self.feeds.values())
