"""What can go wrong in a shared session, as exceptions the gateway turns into WebSocket errors.

Each carries a short `code` for the wire and, where a single field was wrong, the field's name,
so the client can say exactly what it sent badly while the connection stays up.
"""

from __future__ import annotations


class CollabError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_message(self) -> dict:
        """The `error` message sent to the participant whose command failed."""
        out = {"type": "error", "code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class InvalidCommand(CollabError):
    code = "invalid"


class PermissionDenied(CollabError):
    code = "forbidden"


class SessionNotFound(CollabError):
    code = "not_found"


class SessionEnded(CollabError):
    code = "ended"


class BusUnavailable(CollabError):
    """The shared bus (Redis) cannot be reached right now; the command may be retried."""

    code = "unavailable"


class VolumeUnavailable(CollabError):
    """The volume to measure on could not be loaded (the catalog is down, or lost the series)."""

    code = "unavailable"


class Conflict(CollabError):
    """The session changed under a command too many times in a row."""

    code = "conflict"
