"""Fixtures for the session layer (the Redis ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def render_service(tmp_path_factory):
    """A real catalog holding the small demo PET/CT study and a real render service (numpy backend)
    on free loopback ports."""
    from types import SimpleNamespace

    from voxcast.catalog.client import CatalogClient
    from voxcast.catalog.server import create_server as create_catalog
    from voxcast.render.server import create_server as create_render

    from voxcast.config import Settings
    from voxcast.demo import write_demo_study

    demo = write_demo_study(tmp_path_factory.mktemp("demo"), size="small")
    settings = Settings(home=tmp_path_factory.mktemp("render-home"), backend="numpy", metrics_port=0)
    catalog, catalog_port = create_catalog(settings, 0, host="127.0.0.1")
    catalog.start()
    catalog_addr = f"127.0.0.1:{catalog_port}"
    with CatalogClient(catalog_addr) as client:
        results = client.ingest([str(p) for p in demo.ct_paths + demo.pet_paths])
    assert all(r.status != r.REJECTED for r in results), results
    render, render_port = create_render(settings, 0, catalog_addr, host="127.0.0.1")
    render.start()
    yield SimpleNamespace(
        demo=demo, addr=f"127.0.0.1:{render_port}", server=render, catalog_addr=catalog_addr
    )
    render.stop(0).wait()
    catalog.stop(0).wait()
