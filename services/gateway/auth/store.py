"""The gateway's database: users, share links and the audit log (SQLAlchemy).

It lives in the database of VOXCAST_DATABASE_URL when that is set (tables prefixed `gateway_`, so
they sit beside the catalog's), else in its own SQLite file, VOXCAST_HOME/gateway.db."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from voxcast.config import Settings

_hasher = PasswordHasher()


class Role(StrEnum):
    ADMIN = "admin"
    CLINICIAN = "clinician"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "gateway_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class ShareLink(Base):
    __tablename__ = "gateway_share_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Only a hash of the link's secret is stored: a leaked database does not open the links.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    study_uid: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int] = mapped_column(ForeignKey("gateway_users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    pin_hash: Mapped[str | None] = mapped_column(String(256))
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "gateway_audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    principal: Mapped[str] = mapped_column(String(96))  # "user:alice" or "share:12"
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    remote: Mapped[str] = mapped_column(String(64))


class AuthError(Exception):
    """Wrong credentials, unknown, expired or revoked link, wrong PIN."""


@dataclass(frozen=True)
class NewShare:
    link: ShareLink
    token: str  # shown once, to the clinician who created it


def now() -> datetime:
    # SQLite drops time zones; everything is stored as naive UTC.
    return datetime.now(UTC).replace(tzinfo=None)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def store_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.home / 'gateway.db'}"


class Store:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(store_url(settings))

    def session(self) -> Session:
        return self._sessions()

    # Users

    def add_user(self, username: str, password: str, role: Role | str) -> User:
        role = Role(role)
        if not username or len(username) > 64:
            raise ValueError("a username has 1 to 64 characters")
        if len(password) < 8:
            raise ValueError("a password has at least 8 characters")
        with self.session() as s, s.begin():
            if s.scalar(select(User).where(User.username == username)):
                raise ValueError(f"user {username!r} already exists")
            user = User(username=username, password_hash=_hasher.hash(password), role=role, created_at=now())
            s.add(user)
        return user

    def has_users(self) -> bool:
        with self.session() as s:
            return s.scalar(select(User.id).limit(1)) is not None

    def get_user(self, user_id: int) -> User | None:
        with self.session() as s:
            return s.get(User, user_id)

    def authenticate(self, username: str, password: str) -> User:
        with self.session() as s:
            user = s.scalar(select(User).where(User.username == username))
        if user is None:
            _hasher.hash(password)  # same cost as a wrong password: no user enumeration by timing
            raise AuthError("wrong username or password")
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise AuthError("wrong username or password") from None
        return user

    # Share links

    def create_share(self, study_uid: str, user_id: int, minutes: int, pin: str | None) -> NewShare:
        token = secrets.token_urlsafe(24)
        link = ShareLink(
            token_hash=_token_hash(token),
            study_uid=study_uid,
            created_by=user_id,
            created_at=now(),
            expires_at=now() + timedelta(minutes=minutes),
            pin_hash=_hasher.hash(pin) if pin else None,
            revoked_at=None,
        )
        with self.session() as s, s.begin():
            s.add(link)
        return NewShare(link, token)

    def list_shares(self, user_id: int | None) -> list[ShareLink]:
        """The links a user created (every link when user_id is None), newest first."""
        query = select(ShareLink).order_by(ShareLink.id.desc())
        if user_id is not None:
            query = query.where(ShareLink.created_by == user_id)
        with self.session() as s:
            return list(s.scalars(query))

    def revoke_share(self, share_id: int, user_id: int | None) -> ShareLink | None:
        with self.session() as s, s.begin():
            link = s.get(ShareLink, share_id)
            if link is None or (user_id is not None and link.created_by != user_id):
                return None
            if link.revoked_at is None:
                link.revoked_at = now()
            return link

    def find_share(self, token: str) -> ShareLink:
        """The live link with this token; AuthError when unknown, expired or revoked."""
        with self.session() as s:
            link = s.scalar(select(ShareLink).where(ShareLink.token_hash == _token_hash(token)))
        if link is None:
            raise AuthError("unknown share link")
        self._check_live(link)
        return link

    @staticmethod
    def check_pin(link: ShareLink, pin: str | None) -> None:
        """Nothing when the link has no PIN or `pin` is its PIN; AuthError when it needs one and none
        was given or it is wrong."""
        if link.pin_hash:
            if not pin:
                raise AuthError("this link needs its PIN")
            try:
                _hasher.verify(link.pin_hash, pin)
            except (VerificationError, InvalidHashError):
                raise AuthError("wrong PIN") from None

    def live_share(self, share_id: int) -> ShareLink:
        """The link behind a guest token, checked again on every use so revocation is immediate."""
        with self.session() as s:
            link = s.get(ShareLink, share_id)
        if link is None:
            raise AuthError("unknown share link")
        self._check_live(link)
        return link

    @staticmethod
    def _check_live(link: ShareLink) -> None:
        if link.revoked_at is not None:
            raise AuthError("this share link was revoked")
        if link.expires_at <= now():
            raise AuthError("this share link has expired")

    # Audit

    def audit(self, principal: str, study_uid: str, action: str, remote: str) -> None:
        with self.session() as s, s.begin():
            s.add(
                AuditEntry(at=now(), principal=principal, study_uid=study_uid, action=action, remote=remote)
            )

    def audit_entries(self, study_uid: str | None = None, limit: int = 100) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if study_uid:
            query = query.where(AuditEntry.study_uid == study_uid)
        with self.session() as s:
            return list(s.scalars(query))
