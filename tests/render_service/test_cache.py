"""The volume cache: byte bound, LRU order, single-flight loading, failed loads retried."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
from voxcast.render.cache import VolumeCache
from voxcast.render.errors import TooLarge, Unavailable
from voxcast.render.metrics import RenderMetrics

MIB = 2**20


@dataclass
class Blob:
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def test_lru_keeps_bytes_under_the_bound():
    metrics = RenderMetrics()
    cache = VolumeCache(5 * MIB, lambda key: Blob(np.zeros(2 * MIB, np.uint8)), metrics)
    for key in "abcdef":
        cache.get(key)
        assert cache.nbytes <= 5 * MIB
    assert cache.keys() == ["e", "f"]
    cache.get("e")  # e becomes the most recent: g evicts f
    cache.get("g")
    assert cache.keys() == ["e", "g"]
    assert metrics.value("voxcast_render_cache_evictions_total") == 5
    assert metrics.value("voxcast_render_cache_bytes") == 4 * MIB
    assert metrics.value("voxcast_render_cache_hit_ratio") == pytest.approx(1 / 8)


def test_concurrent_requests_share_one_load():
    calls = []
    release = threading.Event()

    def load(key):
        calls.append(key)
        release.wait(5)
        return Blob(np.zeros(10, np.uint8))

    cache = VolumeCache(MIB, load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("a"))) for _ in range(6)]
    for t in threads:
        t.start()
    while not calls:
        time.sleep(0.001)
    time.sleep(0.05)
    release.set()
    for t in threads:
        t.join(5)
    assert calls == ["a"]
    assert len(results) == 6 and all(r is results[0] for r in results)


def test_failed_load_is_not_remembered():
    attempts = []

    def load(key):
        attempts.append(key)
        if len(attempts) == 1:
            raise Unavailable("catalog down")
        return Blob(np.zeros(10, np.uint8))

    cache = VolumeCache(MIB, load)
    with pytest.raises(Unavailable):
        cache.get("a")
    assert cache.get("a").nbytes == 10
    assert attempts == ["a", "a"]


def test_volume_larger_than_the_bound_is_refused():
    cache = VolumeCache(MIB, lambda key: Blob(np.zeros(2 * MIB, np.uint8)))
    with pytest.raises(TooLarge, match="VOXCAST_RENDER_CACHE_MB"):
        cache.get("big")
    assert cache.nbytes == 0
