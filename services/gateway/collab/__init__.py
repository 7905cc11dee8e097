"""Shared viewing sessions (tumor boards): one presenter drives, everyone sees the same frames.

The gateway creates a SessionHub (SessionHub.from_settings picks the in-process bus, or Redis when
VOXCAST_REDIS_URL is set), joins each WebSocket to a session as a Participant, forwards the
participant's commands to Participant.send and sends it what Participant.receive and
Participant.frames give.
"""

from .bus import Bus, InProcessBus, make_bus
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
from .fanout import LatestFrames, Renderer, ViewportFeed
from .hub import SessionHub
from .invites import Grant
from .measure import measure_ellipse, measure_line
from .participant import Identity, Participant
from .state import CLIENT_COMMANDS, SessionState

__all__ = [
    "CLIENT_COMMANDS",
    "Bus",
    "BusUnavailable",
    "CollabError",
    "Conflict",
    "Grant",
    "Identity",
    "InProcessBus",
    "InvalidCommand",
    "LatestFrames",
    "Participant",
    "PermissionDenied",
    "Renderer",
    "SessionEnded",
    "SessionHub",
    "SessionNotFound",
    "SessionState",
    "ViewportFeed",
    "VolumeUnavailable",
    "make_bus",
    "measure_ellipse",
    "measure_line",
]
