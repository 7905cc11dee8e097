"""The gRPC CatalogService end to end: a real server on a free port, a real channel."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from pydicom.data import get_testdata_file
from voxcast.catalog.ingest import STATUS_NAMES

from voxcast.v1 import catalog_pb2, catalog_pb2_grpc


def test_ingest_query_and_fetch_volume(server, catalog, demo_study):
    results = server.ingest([demo_study.out_dir])
    assert len(results) == len(demo_study.ct_paths) + len(demo_study.pet_paths)
    assert {STATUS_NAMES[r.status] for r in results} == {"indexed"}
    assert {STATUS_NAMES[r.status] for r in server.ingest([demo_study.out_dir / "CT"])} == {"duplicate"}

    (study,) = server.search_studies(patient_id=demo_study.patient.patient_id)
    assert study.study_uid == demo_study.study_uid and study.modalities == ["CT", "PT"]
    assert server.search_studies(patient_name=demo_study.patient.name.split("^")[0].lower() + "*")
    assert server.search_studies(
        modality="pt", date_from=demo_study.study.date, date_to=demo_study.study.date
    )
    assert not server.search_studies(modality="MR")
    assert not server.search_studies(date_to="19990101")
    assert server.search_studies(accession_number=demo_study.study.accession_number)

    series = {s.series_uid: s for s in server.list_series(study.study_uid)}
    ct = series[demo_study.ct_series_uid]
    assert ct.is_volume and ct.num_instances == len(demo_study.ct_paths)
    assert list(ct.geometry.shape) == list(demo_study.ct.shape)
    np.testing.assert_allclose(ct.geometry.spacing_mm, demo_study.ct.spacing, atol=1e-5)
    assert server.get_series(demo_study.pet_series_uid).geometry.units == "SUVbw"

    volume = server.fetch_volume(demo_study.ct_series_uid, chunk_bytes=4096)
    local = catalog.fetch_volume(demo_study.ct_series_uid)
    assert volume.voxels.tobytes() == local.voxels.tobytes()
    assert volume.voxels.dtype == local.voxels.dtype and volume.geometry_equal(local)
    assert volume.units == "HU" and volume.series_uid == demo_study.ct_series_uid
    np.testing.assert_array_equal(volume.voxels, demo_study.ct.voxels)
    np.testing.assert_allclose(volume.affine, demo_study.ct.affine, atol=1e-4)

    instances = server.list_instances(demo_study.pet_series_uid)
    assert len(instances) == len(demo_study.pet_paths)
    by_uid = {r.sop_instance_uid: r.path for r in results}
    first = instances[0]
    with open(by_uid[first.sop_instance_uid], "rb") as f:
        assert server.get_instance(first.sop_instance_uid) == f.read()


def test_zip_upload_and_rejections_over_grpc(server, src):
    import zipfile

    archive = src / "cd.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(get_testdata_file("CT_small.dcm"), "a/CT_small.dcm")
        z.writestr("../evil.dcm", b"x")
    (src / "note.txt").write_text("hello")
    results = server.ingest([archive, src / "note.txt", src / "missing.dcm"])
    assert [r.path for r in results] == [f"{archive}!a/CT_small.dcm", f"{archive}!../evil.dcm",
                                         str(src / "note.txt"), str(src / "missing.dcm")]  # fmt: skip
    assert [STATUS_NAMES[r.status] for r in results] == ["indexed", "rejected", "rejected", "rejected"]
    assert results[1].reason.startswith("unsafe path in archive")
    assert results[2].reason.startswith("not DICOM")
    assert results[3].reason == "no such file or directory"


def test_status_codes(server):
    (cr,) = server.ingest([get_testdata_file("CT_small.dcm")])
    cases = [
        (lambda: server.get_series("1.2.3.404"), grpc.StatusCode.NOT_FOUND),
        (lambda: server.get_series(""), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: server.list_series("1.2.3.404"), grpc.StatusCode.NOT_FOUND),
        (lambda: server.get_instance("1.2.3.404"), grpc.StatusCode.NOT_FOUND),
        (lambda: server.fetch_volume("1.2.3.404"), grpc.StatusCode.NOT_FOUND),
        (lambda: server.fetch_volume(cr.series_uid), grpc.StatusCode.FAILED_PRECONDITION),
        (lambda: server.fetch_volume(cr.series_uid, chunk_bytes=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: server.search_studies(date_from="2024-01-01"), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for call, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == code, (code, err.value.details())
    with pytest.raises(grpc.RpcError) as err:
        server.fetch_volume(cr.series_uid)
    assert "single image" in err.value.details()


def test_empty_upload_and_incomplete_files(server):
    stub = catalog_pb2_grpc.CatalogServiceStub(server._channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Ingest(iter([]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "empty upload" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.Ingest(iter([catalog_pb2.IngestRequest(data=b"abc", end_of_file=True)]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    response = stub.Ingest(
        iter(
            [
                catalog_pb2.IngestRequest(name="empty.dcm", end_of_file=True),
                catalog_pb2.IngestRequest(name="half.dcm", data=data[:1000]),
                catalog_pb2.IngestRequest(name="ct.dcm", data=data[:20000]),
                catalog_pb2.IngestRequest(name="ct.dcm", data=data[20000:], end_of_file=True),
                catalog_pb2.IngestRequest(name="tail.dcm", data=data),
            ]
        )
    )
    got = [(r.path, STATUS_NAMES[r.status], r.reason) for r in response.results]
    assert got == [
        ("empty.dcm", "rejected", "empty file"),
        ("half.dcm", "rejected", "truncated: upload ended before end_of_file"),
        ("ct.dcm", "indexed", ""),
        ("tail.dcm", "rejected", "truncated: upload ended before end_of_file"),
    ]


def test_health_service(server):
    assert server.health() == "SERVING"
    from grpc_health.v1 import health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(server._channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service="voxcast.v1.CatalogService"))
    assert response.status == health_pb2.HealthCheckResponse.SERVING
