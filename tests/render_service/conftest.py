"""Real services on free loopback ports: a catalog holding the small demo PET/CT study, and render
servers built per test with the settings the test needs.

The render service's behaviour (ladder, coalescing, cancellation, back-pressure) is what these tests
check, so they render with the numpy reference backend: no kernel compilation, and render times long
enough that a cancellation or a second caller reliably arrives while a frame is being rendered.
"""

from __future__ import annotations

import grpc
import pytest
from voxcast.catalog.client import CatalogClient
from voxcast.catalog.server import create_server as create_catalog
from voxcast.render import engine
from voxcast.render.catalog_source import CatalogSource
from voxcast.render.jobs import SETTLE_S
from voxcast.render.server import RenderServer
from voxcast.render.service import RenderCore

from voxcast.config import Settings
from voxcast.demo import write_demo_study
from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import render_pb2_grpc

BACKEND = "numpy"


class CatalogService:
    """A catalog server that can be stopped and started again on the same port and data."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server, self.port = create_catalog(settings, 0, host="127.0.0.1")
        self.server.start()
        self.addr = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(0).wait()

    def restart(self) -> None:
        self.server, port = create_catalog(self.settings, self.port, host="127.0.0.1")
        assert port == self.port
        self.server.start()

    def ingest(self, paths) -> None:
        with CatalogClient(self.addr) as client:
            results = client.ingest([str(p) for p in paths])
        assert results and all(r.status != r.REJECTED for r in results), results


def settings_for(home, **overrides) -> Settings:
    return Settings(home=home, backend=BACKEND, **overrides)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return write_demo_study(tmp_path_factory.mktemp("demo"), size="small")


@pytest.fixture(scope="session")
def catalog(demo, tmp_path_factory):
    service = CatalogService(settings_for(tmp_path_factory.mktemp("catalog-home")))
    service.ingest(demo.ct_paths + demo.pet_paths)
    yield service
    service.stop()


@pytest.fixture
def start_catalog(tmp_path):
    """start_catalog() -> a private CatalogService (stopped after the test), for stop/restart."""
    services = []

    def start() -> CatalogService:
        service = CatalogService(settings_for(tmp_path / f"catalog-home-{len(services)}"))
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop()


@pytest.fixture
def render_settings(tmp_path):
    """render_settings(**overrides) -> Settings for a render server in this test."""
    return lambda **overrides: settings_for(tmp_path / "render-home", **overrides)


@pytest.fixture
def start_render(catalog, tmp_path):
    """start_render(catalog_addr=..., cache_bytes=..., warm_up=..., settle_s=..., **settings)
    -> (server, stub).

    warm_up(core), when given, is the server's start-up warm-up (default: none, SERVING at once);
    settle_s, the settle interval before a viewport's full frame (default: the service's)."""
    servers, channels = [], []

    def start(
        catalog_addr: str | None = None,
        cache_bytes: int | None = None,
        warm_up=None,
        settle_s: float = SETTLE_S,
        **overrides,
    ):
        settings = settings_for(tmp_path / "render-home", **overrides)
        core = RenderCore(
            CatalogSource(catalog_addr or catalog.addr),
            engine.get_backend(BACKEND),
            cache_bytes=cache_bytes or settings.render_cache_mb * 2**20,
            workers=settings.render_workers,
            queue_limit=settings.render_queue,
            settle_s=settle_s,
        )
        server = RenderServer(
            settings,
            core,
            0,
            "127.0.0.1",
            settings.metrics_port,
            warm_up=None if warm_up is None else lambda: warm_up(core),
        )
        server.start()
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=CHANNEL_OPTIONS)
        channels.append(channel)
        return server, render_pb2_grpc.RenderServiceStub(channel)

    yield start
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(0).wait()
