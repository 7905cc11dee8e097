"""The catalog's in-memory volume cache: reuse, invalidation by new instances, byte bound."""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.catalog.volcache import VolumeCache

from voxcast.demo.dicomwrite import write_volume_series
from voxcast.volume import Volume


def _volume(n=4, value=0) -> Volume:
    return Volume.from_geometry(np.full((n, 8, 8), value, np.int16), (0, 0, 0), (1, 1, 1), np.eye(3))


def test_lru_is_bounded_in_bytes():
    cache = VolumeCache(max_bytes=3 * 4 * 8 * 8 * 2)
    for i in range(4):
        cache.put(f"s{i}", 4, _volume(value=i))
    assert cache.get("s0", 4) is None and cache.get("s3", 4) is not None
    assert cache.nbytes <= cache.max_bytes
    cache.get("s1", 4)  # s1 becomes the most recent: s2 is evicted next
    cache.put("s4", 4, _volume())
    assert cache.get("s1", 4) is not None and cache.get("s2", 4) is None
    cache.put("huge", 1, _volume(n=100))
    assert cache.get("huge", 1) is None


def test_fetch_volume_reuses_and_invalidates(catalog, src):
    source = Volume.from_geometry(
        np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7), (0, 0, 0), (2.0, 1.0, 1.0),
        [[0, 0, 1], [0, 1, 0], [1, 0, 0]], frame_of_reference_uid="1.2.3.4",
    )  # fmt: skip
    paths = write_volume_series(
        source, src / "a", modality="CT", rescale=(1.0, -1024.0), series_uid="1.2.3.7"
    )
    last = paths.pop()
    last.rename(src / "later.dcm")
    catalog.ingest([src / "a"])
    first = catalog.fetch_volume("1.2.3.7")
    assert catalog.fetch_volume("1.2.3.7") is first
    with pytest.raises(ValueError):
        first.voxels[0, 0, 0] = 1  # shared: read-only
    catalog.ingest([src / "later.dcm"])
    full = catalog.fetch_volume("1.2.3.7")
    assert full is not first and full.shape == source.shape
    np.testing.assert_array_equal(full.voxels, source.voxels)
