"""Who is asking, and what they may see: a signed-in user, a guest holding a share link, a guest
admitted to a shared session by its invitation, or the local user of an open loopback gateway.
Built from a JWT (REST Bearer header or WebSocket)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from voxcast.gateway.auth.store import AuthError, Role, ShareLink, Store, User

from voxcast.config import Settings

ALGORITHM = "HS256"
GUEST = "guest"
LOCAL = "local"


@dataclass(frozen=True)
class Principal:
    name: str  # for the audit log: "user:alice", "share:12", "local"
    role: str  # admin, clinician, guest
    user_id: int | None = None
    share_id: int | None = None
    study_uid: str | None = None  # a guest sees this study only
    display: str = ""  # what people read: the username, a session guest's own name
    # A guest admitted to a shared session by its invitation: that session, as this participant.
    session_id: str | None = None
    participant_id: str | None = None
    access_until: float | None = None  # the invitation's expiry (epoch s): a renewed token stops there

    @property
    def is_guest(self) -> bool:
        return self.role == GUEST

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def may_see(self, study_uid: str) -> bool:
        return self.study_uid is None or self.study_uid == study_uid

    def public(self) -> dict:
        return {"name": self.name, "role": self.role, "study_uid": self.study_uid}


LOCAL_PRINCIPAL = Principal(name=LOCAL, role=Role.ADMIN, display=LOCAL)


class Tokens:
    def __init__(self, settings: Settings, store: Store) -> None:
        self._key = settings.secret_key
        self.minutes = settings.token_minutes
        self._store = store

    def _encode(self, claims: dict, expires: datetime) -> str:
        return jwt.encode(
            {**claims, "exp": expires, "iat": datetime.now(UTC)}, self._key, algorithm=ALGORITHM
        )

    def for_user(self, user: User) -> str:
        expires = datetime.now(UTC) + timedelta(minutes=self.minutes)
        return self._encode({"sub": f"user:{user.id}", "name": user.username, "role": user.role}, expires)

    def for_share(self, link: ShareLink) -> str:
        # A guest token never outlives its link.
        expires = min(
            datetime.now(UTC) + timedelta(minutes=self.minutes), link.expires_at.replace(tzinfo=UTC)
        )
        return self._encode({"sub": f"share:{link.id}", "role": GUEST, "study": link.study_uid}, expires)

    def for_session_guest(
        self,
        session_id: str,
        study_uid: str,
        participant_id: str,
        name: str,
        expires_at: float,
        share: ShareLink | None = None,
    ) -> str:
        """Access for a guest a session invitation admitted: the session's study only (REST, /ws) and
        back into that session as the same participant. It never outlives the invitation, nor the
        share link the guest came with (`share`), which is checked again on every use."""
        kind, _, ident = participant_id.partition(":")
        if kind != "g" or not ident:
            raise ValueError(f"not a guest participant id: {participant_id!r}")
        ends = [datetime.now(UTC) + timedelta(minutes=self.minutes), datetime.fromtimestamp(expires_at, UTC)]
        claims = {"sub": f"guest:{ident}", "role": GUEST, "study": study_uid, "sid": session_id, "name": name}
        claims["until"] = expires_at
        if share is not None:
            claims["share"] = share.id
            ends.append(share.expires_at.replace(tzinfo=UTC))
        return self._encode(claims, min(ends))

    def principal(self, token: str) -> Principal:
        """The principal of a token; AuthError when it is invalid, expired, or its link is revoked."""
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid token") from None
        kind, _, ident = str(claims["sub"]).partition(":")
        if kind == "share" and ident.isdigit():
            link = self._store.live_share(int(ident))
            return Principal(
                name=f"share:{link.id}",
                role=GUEST,
                share_id=link.id,
                study_uid=link.study_uid,
                display="Guest",
            )
        if kind == "guest" and ident and claims.get("study") and claims.get("sid"):
            share_id = claims.get("share")
            if share_id is not None:
                # Came with a share link: revoking the link ends this access too.
                share_id = self._store.live_share(int(share_id)).id
            return Principal(
                # The audit trail leads back to the link a guest came with.
                name=f"share:{share_id}" if share_id is not None else f"guest:{ident}",
                role=GUEST,
                share_id=share_id,
                study_uid=str(claims["study"]),
                display=str(claims.get("name") or "Guest"),
                session_id=str(claims["sid"]),
                participant_id=f"g:{ident}",
                access_until=float(claims.get("until") or claims["exp"]),
            )
        if kind == "user" and ident.isdigit():
            user = self._store.get_user(int(ident))
            if user is None:
                raise AuthError("user no longer exists")
            return Principal(
                name=f"user:{user.username}", role=user.role, user_id=user.id, display=user.username
            )
        raise AuthError("invalid token")
