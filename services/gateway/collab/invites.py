"""Invitation tokens: signed (HS256, Settings.secret_key) links into one session.

A token names the session, its study, the kind of participant it admits (a signed-in user, or a
guest who must also give a PIN) and expires. Its id is recorded in the session state with the PIN's
argon2 hash, so the PIN never travels in the token, an invitation can be revoked, and wrong PINs are
counted. Redeeming a token gives a Grant; a Grant is also what the gateway builds from its own share
links, and what SessionHub.join accepts.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import InvalidCommand, PermissionDenied

AUDIENCE = "voxcast:collab-invite"
ALGORITHM = "HS256"
PIN_PATTERN = re.compile(r"^[0-9]{4,12}$")
Kind = Literal["user", "guest"]


@dataclass(frozen=True)
class Grant:
    """Admission to one session, for one participant."""

    session_id: str
    study_uid: str
    kind: Kind
    participant_id: str
    may_control: bool = False
    expires_at: float | None = None  # when the invitation it came from expires (seconds since the epoch)

    def allows_study(self, study_uid: str) -> bool:
        """A guest sees only the session's study (the gateway checks its REST routes with this)."""
        return study_uid == self.study_uid


@dataclass(frozen=True)
class InviteClaims:
    session_id: str
    study_uid: str
    kind: Kind
    jti: str
    expires_at: float


class InviteCodec:
    def __init__(self, secret_key: str, hasher: PasswordHasher | None = None) -> None:
        if not secret_key:
            raise ValueError("invitations need a secret key")
        self._key = secret_key
        self._hasher = hasher or PasswordHasher()

    def issue(
        self,
        session_id: str,
        study_uid: str,
        kind: Kind,
        *,
        minutes: int = 240,
        pin: str | None = None,
        may_control: bool = False,
    ) -> tuple[str, dict]:
        """The token and the record to store in the session (holding the PIN's hash)."""
        if kind not in ("user", "guest"):
            raise InvalidCommand("an invitation is for a 'user' or a 'guest'", field="kind")
        if kind == "guest" and (pin is None or not PIN_PATTERN.match(pin)):
            raise InvalidCommand("a guest invitation needs a PIN of 4 to 12 digits", field="pin")
        if kind == "user" and pin is not None:
            raise InvalidCommand("a PIN is only for guest invitations", field="pin")
        if not 1 <= minutes <= 7 * 24 * 60:
            raise InvalidCommand("an invitation lasts 1 minute to 7 days", field="minutes")
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims = {
            "aud": AUDIENCE,
            "sid": session_id,
            "study": study_uid,
            "kind": kind,
            "jti": jti,
            "iat": now,
            "exp": now + minutes * 60,
        }
        record = {
            "jti": jti,
            "kind": kind,
            "may_control": bool(may_control),
            "pin_hash": self._hasher.hash(pin) if pin is not None else None,
            "failures": 0,
            "revoked": False,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), record

    def decode(self, token: str) -> InviteClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["exp", "aud", "sid", "study", "kind", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise PermissionDenied("the invitation has expired", field="token") from None
        except jwt.InvalidTokenError as exc:
            raise PermissionDenied(f"not a valid invitation: {exc}", field="token") from None
        if claims["kind"] not in ("user", "guest"):
            raise PermissionDenied("not a valid invitation: unknown kind", field="token")
        return InviteClaims(
            claims["sid"], claims["study"], claims["kind"], claims["jti"], float(claims["exp"])
        )

    def pin_matches(self, record: dict, pin: str | None) -> bool:
        if record.get("pin_hash") is None:
            return True
        if pin is None:
            return False
        try:
            return self._hasher.verify(record["pin_hash"], pin)
        except (VerificationError, InvalidHashError):
            return False
