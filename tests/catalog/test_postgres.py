"""The same index code on a real PostgreSQL (a running local server, or a throwaway cluster)."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
from pydicom.data import get_testdata_file
from voxcast.catalog.blobstore import FileBlobStore
from voxcast.catalog.catalog import Catalog
from voxcast.catalog.index import Index
from voxcast.catalog.ingest import STATUS_NAMES


def _catalog(url, tmp_path) -> Catalog:
    return Catalog(Index(url), FileBlobStore(tmp_path / "blobs"), tmp_path / "tmp")


def test_catalog_on_postgresql(postgres_url, tmp_path, demo_study):
    catalog = _catalog(postgres_url, tmp_path)
    try:
        assert catalog.index.engine.dialect.name == "postgresql"
        results = list(catalog.ingest([demo_study.out_dir, get_testdata_file("CT_small.dcm")]))
        assert Counter(STATUS_NAMES[r.status] for r in results) == {
            "indexed": len(demo_study.ct_paths) + len(demo_study.pet_paths) + 1
        }
        assert {STATUS_NAMES[r.status] for r in catalog.ingest([demo_study.out_dir])} == {"duplicate"}

        name = demo_study.patient.name
        (study,) = catalog.search_studies(patient_name=name[:3].lower() + "*", modality="CT")
        assert study.study_uid == demo_study.study_uid and study.num_series == 2
        assert len(catalog.search_studies()) == 2
        assert catalog.search_studies(patient_name="_%") == []  # LIKE metacharacters are literal

        series = {s.series_uid: s for s in catalog.list_series(study.study_uid)}
        pet = series[demo_study.pet_series_uid]
        assert pet.is_volume and pet.geometry.units == "SUVbw"
        assert catalog.index.get_series(demo_study.pet_series_uid).volume_info["shape"] == list(
            demo_study.pet.shape
        )
        volume = catalog.fetch_volume(demo_study.ct_series_uid)
        np.testing.assert_array_equal(volume.voxels, demo_study.ct.voxels)
    finally:
        catalog.close()


def test_two_writers_index_each_instance_once(postgres_url, tmp_path, demo_study):
    """Two catalogs (as two processes would) import the same files at once: no errors, no doubles."""
    catalogs = [_catalog(postgres_url, tmp_path) for _ in range(2)]  # one database, one blob store
    outcomes: list[list] = [[], []]

    def run(i):
        outcomes[i] = [STATUS_NAMES[r.status] for r in catalogs[i].ingest([demo_study.out_dir / "CT"])]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        n = len(demo_study.ct_paths)
        assert len(outcomes[0]) == len(outcomes[1]) == n
        assert Counter(outcomes[0] + outcomes[1]) == {"indexed": n, "duplicate": n}
        assert catalogs[0].get_series(demo_study.ct_series_uid).num_instances == n
    finally:
        for c in catalogs:
            c.close()
