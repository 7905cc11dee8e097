"""Everything a request handler needs, built once per app: settings, backends, store, tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxcast.gateway.auth.principal import Tokens
from voxcast.gateway.auth.store import Store
from voxcast.gateway.backends import Backends
from voxcast.gateway.thumbnails import ThumbnailCache

from voxcast.config import Settings


@dataclass
class Gateway:
    settings: Settings
    store: Store
    tokens: Tokens
    backends: Backends
    # Open mode: no sign-in, every request is the local admin. Only `voxcast up --open-loopback`
    # sets it, and then the gateway listens on 127.0.0.1 only.
    open_access: bool = False
    thumbnails: ThumbnailCache = field(default_factory=ThumbnailCache)
