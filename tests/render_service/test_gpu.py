"""The render core on a CUDA device, as a GPU render pod runs it (the cupy backend): the warm-up
compiles every kernel, each mode's ladder ends in the numpy reference's picture, the prepared
volumes sit in CuPy's memory pool and are reported by voxcast_render_gpu_memory_bytes, and evicting
them hands the memory back to the device.

Skipped as a whole, decided once, where no CUDA device answers."""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.catalog.client import CatalogClient
from voxcast.render import engine, wire
from voxcast.render.catalog_source import CatalogSource
from voxcast.render.encode import decode
from voxcast.render.engine.backends import cupy_backend
from voxcast.render.ladder import FULL
from voxcast.render.service import RenderCore

from voxcast.v1 import render_pb2

from .test_service import MODES, request_for

pytestmark = pytest.mark.gpu
if not cupy_backend.is_available():
    pytest.skip(f"cupy backend unavailable: {cupy_backend.missing()}", allow_module_level=True)

MIB = 2**20


@pytest.fixture
def core(catalog):
    core = RenderCore(
        CatalogSource(catalog.addr),
        engine.get_backend("cupy"),
        cache_bytes=512 * MIB,
        workers=2,
        queue_limit=8,
    )
    yield core
    core.close()


def test_every_mode_through_the_ladder_matches_the_reference(core, catalog, demo):
    core.warm_up()
    assert core.metrics.value("voxcast_render_warmup_seconds") > 0
    with CatalogClient(catalog.addr) as client:
        reference = engine.prepare_volume(client.fetch_volume(demo.ct_series_uid), "numpy")
    for mode in MODES:
        req = request_for(demo.ct, demo.ct_series_uid, mode, lossless=True)
        frames = list(core.render(req))
        assert [f.rung for f in frames] == [render_pb2.PREVIEW, render_pb2.FULL, render_pb2.LOSSLESS]
        expected = engine.render(reference, wire.view_request(req, reference, FULL)).rgb
        # Every mode samples exactly on the GPU: at most one display level from the reference.
        assert np.abs(decode(frames[-1].data).astype(int) - expected.astype(int)).max() <= 1, mode


def test_volumes_live_in_the_gpu_pool_and_eviction_frees_it(core, demo):
    import cupy

    pool = cupy.get_default_memory_pool()
    cached = core.volume(demo.ct_series_uid)
    assert isinstance(cached.prepared.handles[0], cupy_backend.CupyVolume)
    reported = core.metrics.value("voxcast_render_gpu_memory_bytes")
    assert reported == pool.used_bytes()
    assert reported >= cached.nbytes  # every level of the pyramid is on the device
    del cached
    core.cache.clear()
    assert pool.used_bytes() < MIB
    assert pool.total_bytes() < MIB  # given back to the device, not only to the pool
    assert core.metrics.value("voxcast_render_gpu_memory_bytes") < MIB
