"""The gateway's gRPC clients: one channel to the catalog, and a pool of render services chosen per
series by consistent hashing. A render service that does not answer is skipped for a while."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from voxcast.gateway.discovery import RenderDiscovery, make_discovery
from voxcast.gateway.errors import rpc_error
from voxcast.gateway.ring import HashRing

from voxcast.config import Settings
from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import catalog_pb2_grpc, render_pb2, render_pb2_grpc

log = logging.getLogger(__name__)

# How long an address that failed with UNAVAILABLE is passed over before it is tried again.
DEAD_SECONDS = 10.0
HEALTH_TIMEOUT_S = 2.0


async def check_health(channel: grpc.aio.Channel) -> bool:
    """True when the service answers the standard health check (or at least answers at all)."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_S
        )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.aio.AioRpcError as exc:
        # A server without the health service is still up.
        return exc.code() == grpc.StatusCode.UNIMPLEMENTED


class RenderPool:
    """Render services by consistent hash of the series UID; dead addresses are skipped."""

    def __init__(self, discovery: RenderDiscovery) -> None:
        self._discovery = discovery
        self.ring = HashRing()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._dead_until: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._discovery.start(self._on_change)

    def _on_change(self, addresses: list[str]) -> None:
        # Kubernetes discovery calls from its watch thread; the ring is thread-safe.
        log.info("render services: %s", ", ".join(addresses) or "(none)")
        self.ring.update(addresses)

    async def close(self) -> None:
        self._discovery.stop()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _stub(self, address: str) -> render_pb2_grpc.RenderServiceStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        return render_pb2_grpc.RenderServiceStub(channel)

    def addresses_for(self, series_uid: str) -> list[str]:
        """The ring order for a series, live addresses first, dead ones last (still tried when all are)."""
        now = time.monotonic()
        ordered = list(self.ring.candidates(series_uid))
        return [a for a in ordered if self._dead_until.get(a, 0) <= now] + [
            a for a in ordered if self._dead_until.get(a, 0) > now
        ]

    def _mark_dead(self, address: str) -> None:
        log.warning("render service %s unavailable; skipping it for %.0f s", address, DEAD_SECONDS)
        self._dead_until[address] = time.monotonic() + DEAD_SECONDS

    async def render(self, request: render_pb2.RenderRequest) -> AsyncIterator[render_pb2.Frame]:
        """The frames of one request. Falls over to the next address on the ring when a render
        service is unreachable before its first frame; closing the generator cancels the call."""
        addresses = self.addresses_for(request.series_uid)
        if not addresses:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "no render service is known")
        for i, address in enumerate(addresses):
            call = self._stub(address).Render(request)
            started = False
            try:
                async for frame in call:
                    started = True
                    yield frame
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and not started and i + 1 < len(addresses):
                    self._mark_dead(address)
                    continue
                raise
            finally:
                call.cancel()

    async def preload(self, series_uid: str) -> render_pb2.PreloadResponse:
        addresses = self.addresses_for(series_uid)
        for i, address in enumerate(addresses):
            try:
                return await self._stub(address).Preload(render_pb2.PreloadRequest(series_uid=series_uid))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and i + 1 < len(addresses):
                    self._mark_dead(address)
                    continue
                raise
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, "no render service is known")

    async def health(self) -> list[dict]:
        results = []
        for address in self.ring.addresses:
            self._stub(address)
            results.append({"addr": address, "reachable": await check_health(self._channels[address])})
        return results


class Backends:
    """What the gateway talks to: the catalog and the render pool. Created in the app's lifespan."""

    def __init__(self, settings: Settings, discovery: RenderDiscovery | None = None) -> None:
        self.settings = settings
        self.catalog_channel = grpc.aio.insecure_channel(settings.catalog_addr, options=CHANNEL_OPTIONS)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self.catalog_channel)
        self.render = RenderPool(discovery or make_discovery(settings))

    def start(self) -> None:
        self.render.start()

    async def close(self) -> None:
        await self.render.close()
        with contextlib.suppress(Exception):
            await self.catalog_channel.close()

    async def health(self) -> dict:
        catalog_ok = await check_health(self.catalog_channel)
        renders = await self.render.health()
        ok = catalog_ok and any(r["reachable"] for r in renders)
        return {
            "status": "ok" if ok else "degraded",
            "catalog": {"addr": self.settings.catalog_addr, "reachable": catalog_ok},
            "render": renders,
        }
