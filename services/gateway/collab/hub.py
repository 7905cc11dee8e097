"""SessionHub: the sessions one gateway serves, over a Bus shared with the other gateway replicas.

The gateway creates one hub, admits people to sessions (invitations, grants) and gets a Participant
per WebSocket connection. Each session with someone connected here is a Room (room.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

from argon2 import PasswordHasher

from voxcast.config import Settings
from voxcast.volume import Volume

from .bus import Bus, make_bus
from .errors import BusUnavailable, Conflict, InvalidCommand, PermissionDenied, SessionEnded, SessionNotFound
from .fanout import FrameCodec, Renderer
from .invites import Grant, InviteCodec
from .participant import Identity, Participant
from .room import Room
from .state import MAX_INVITE_FAILURES, REVOKED, SessionState, new_session_fields, participant_record

log = logging.getLogger(__name__)

# Loads a series of the session's study as a Volume (the gateway fetches it from the catalog).
VolumeLoader = Callable[[str], Awaitable[Volume]]


class SessionHub:
    """Entry point for the gateway: create sessions, admit people, hand out their connections."""

    def __init__(
        self,
        bus: Bus,
        secret_key: str,
        *,
        volume_loader: VolumeLoader | None = None,
        renderer: Renderer | None = None,
        frame_codec: FrameCodec | None = None,
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
        # With a codec, settled frames are shared between replicas through the bus.
        self.frame_codec = frame_codec
        self.ttl_s = ttl_s
        self.ended_ttl_s = ended_ttl_s
        self.keepalive_s = keepalive_s if keepalive_s is not None else min(5.0, ttl_s / 3)
        # This gateway replica, as named in participants' connection counts; it is declared gone
        # when its heartbeat has not been renewed for three keep-alive periods.
        self.replica_id = uuid.uuid4().hex[:12]
        self._heartbeat: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
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

    def _spawn(self, coro) -> None:
        """Run `coro` in the background, referenced until done."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
            self._heartbeat = asyncio.create_task(self._heartbeat_forever(), name="voxcast-collab-heartbeat")
            await self._beat()  # alive before holding any connection
        lock = self._opening.setdefault(session_id, asyncio.Lock())
        try:
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
        finally:
            if self._opening.get(session_id) is lock and not lock.locked():
                del self._opening[session_id]

    async def state(self, session_id: str) -> SessionState:
        """The session's current state, read from the bus (which every replica's copy follows)."""
        snapshot = await self.bus.load(session_id)
        if snapshot is None:
            raise SessionNotFound(f"no session {session_id}")
        return SessionState(snapshot.fields)

    async def invite(
        self,
        session_id: str,
        by: Identity,
        kind: Literal["user", "guest"],
        *,
        pin: str | None = None,
        may_control: bool = False,
        minutes: int = 240,
    ) -> str:
        """An invitation token into the session, issued by its owner, an admin or the presenter
        (connected or not: the viewer's "invite" button may go through REST)."""
        room = await self._room(session_id)
        try:
            # Hashing the PIN (argon2) takes a while: off the event loop.
            token, record = await asyncio.to_thread(
                self.invites.issue,
                session_id,
                room.state.study_uid,
                kind,
                pin=pin,
                may_control=may_control,
                minutes=minutes,
            )
            await room.submit(by.participant_id, {"type": "invite", "invitation": record})
            return token
        finally:
            await room._close_if_empty()

    async def redeem(
        self,
        token: str,
        *,
        pin: str | None = None,
        user: Identity | None = None,
        guest_of: str | None = None,
    ) -> Grant:
        """Check an invitation (and the PIN of a guest one) and admit its holder.

        A signed-in `user` is admitted as themselves (to a guest invitation too, given its PIN).
        `guest_of` is the study of a guest who already holds access to one (a share link): the
        invitation must be for that study, and admits them as a guest, in control only if granted.
        Anyone else needs a guest invitation and its PIN, and gets a fresh guest participant id."""
        claims = self.invites.decode(token)
        if guest_of is not None and claims.study_uid != guest_of:
            raise PermissionDenied(
                "this invitation is for another study than the one your link opens", field="token"
            )
        state = await self.state(claims.session_id)
        if state.ended:
            raise SessionEnded("the session has ended")
        record = state.invitation(claims.jti)
        if record is None or state.study_uid != claims.study_uid:
            raise PermissionDenied("this invitation is no longer valid", field="token")
        if record["revoked"]:
            raise PermissionDenied(REVOKED, field="token")
        signed_in = user is not None and user.kind == "user"
        if claims.kind == "user" and not signed_in and guest_of is None:
            raise PermissionDenied("this invitation is for signed-in users", field="token")
        if claims.kind == "guest":
            await self._check_pin(claims.session_id, claims.jti, pin)
        if signed_in:
            return Grant(
                claims.session_id, claims.study_uid, "user", user.participant_id, True, claims.expires_at
            )
        may_control = record["may_control"] and claims.kind == "guest"
        guest_id = f"g:{uuid.uuid4().hex[:16]}"
        return Grant(claims.session_id, claims.study_uid, "guest", guest_id, may_control, claims.expires_at)

    async def _check_pin(self, session_id: str, jti: str, pin: str | None) -> None:
        """Check a guest invitation's PIN; refuse a wrong one, saying how many tries are left.

        The try is counted in the session (one order for every replica) before argon2 runs and taken
        back once the PIN proves right, so a burst of guesses in parallel gets no more tries than
        the same guesses one after another."""
        room = await self._room(session_id)
        try:
            event = await room.submit("", {"type": "invite_attempt", "jti": jti})
            record = room.state.invitation(jti)
            if await asyncio.to_thread(self.invites.pin_matches, record, pin):
                await room.submit("", {"type": "invite_admitted", "jti": jti})
                return
        finally:
            await room._close_if_empty()
        if event["revoked"]:
            message = f"after {MAX_INVITE_FAILURES} wrong PINs the invitation is revoked; ask for a new one"
            raise PermissionDenied(f"wrong PIN: {message}", field="pin")
        left = MAX_INVITE_FAILURES - event["failures"]
        raise PermissionDenied(f"wrong PIN ({left} {'try' if left == 1 else 'tries'} left)", field="pin")

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
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._owns_bus:
            await self.bus.close()
