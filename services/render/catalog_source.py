"""Where the render service gets volumes: the catalog service, over its proto.

Errors are turned into the render service's own: an unknown series is NotFound, a series that is
not a volume is InvalidArgument, and a catalog that cannot be reached is Unavailable (the channel
reconnects on its own, quickly, so the service recovers when the catalog comes back).
"""

from __future__ import annotations

import grpc
from voxcast.catalog.client import CatalogClient

from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.volume import Volume

from .errors import InvalidArgument, NotFound, Unavailable

# Retry a lost catalog within about a second instead of gRPC's default backoff (up to 2 minutes).
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
FETCH_TIMEOUT_S = 300.0


class CatalogSource:
    def __init__(self, addr: str, timeout: float = FETCH_TIMEOUT_S) -> None:
        self.addr = addr
        self.timeout = timeout
        self._channel = grpc.insecure_channel(addr, options=CHANNEL_OPTIONS + RECONNECT_OPTIONS)
        self._client = CatalogClient(self._channel, timeout=timeout)

    def fetch_volume(self, series_uid: str) -> Volume:
        try:
            return self._client.fetch_volume(series_uid)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"series {series_uid} is not in the catalog") from None
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                raise InvalidArgument("series_uid", f"series {series_uid}: {exc.details()}") from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"catalog at {self.addr} is unavailable: {exc.details()}") from None
            raise

    def close(self) -> None:
        self._channel.close()
