"""REST: upload (files and zip), search, series, thumbnails, download, health, OpenAPI."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from .conftest import demo_files

pytestmark = pytest.mark.slow


def test_upload_of_the_demo_study(stack):
    answer = stack.upload
    files = demo_files(stack.study.out_dir)
    assert len(answer["results"]) == len(files)
    assert answer["indexed"] == len(files) and answer["rejected"] == 0
    assert {r["study_uid"] for r in answer["results"]} == {stack.study.study_uid}
    assert {r["series_uid"] for r in answer["results"]} == {
        stack.study.ct_series_uid,
        stack.study.pet_series_uid,
    }
    assert {r["file"] for r in answer["results"]} == {p.name for p in files}


def test_upload_of_a_zip_with_a_bad_file_among_good_ones(stack, tmp_path):
    good = demo_files(stack.study.out_dir)[:3]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for p in good:
            z.write(p, f"good/{p.name}")
        z.writestr("bad/broken.dcm", b"DICM but not really" * 10)
    with stack.client("doctor") as client:
        r = client.post(
            "/api/upload", files=[("files", ("batch.zip", archive.getvalue(), "application/zip"))]
        )
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = {res["file"].rsplit("/", 1)[-1]: res for res in body["results"]}
    assert statuses["broken.dcm"]["status"] == "rejected" and statuses["broken.dcm"]["reason"]
    for p in good:  # already stored by the first upload: reported, not lost, not duplicated
        assert statuses[p.name]["status"] == "duplicate"
    assert body["rejected"] == 1 and body["duplicate"] == 3


def test_upload_needs_a_file_and_a_staff_token(stack):
    with stack.client("doctor") as client:
        assert client.post("/api/upload").status_code == 422
    with httpx.Client(base_url=stack.url) as anonymous:
        assert anonymous.post("/api/upload", files=[("files", ("a.dcm", b"x"))]).status_code == 401


def test_search_series_and_info(stack):
    with stack.client("doctor") as client:
        studies = client.get("/api/studies").json()
        assert {s["study_uid"] for s in studies} >= {stack.study.study_uid, stack.other_study.study_uid}
        family = stack.study.patient.name.split("^")[0].lower()
        found = client.get("/api/studies", params={"q": family}).json()
        assert stack.study.study_uid in {s["study_uid"] for s in found}
        assert all(family in s["patient_name"].lower() for s in found)
        assert client.get("/api/studies", params={"date_from": "2026-01-01"}).status_code == 422
        series = client.get(f"/api/studies/{stack.study.study_uid}/series").json()
        ct = next(s for s in series if s["modality"] == "CT")
        assert ct["is_volume"] and len(ct["geometry"]["shape"]) == 3
        info = client.get(f"/api/series/{stack.study.ct_series_uid}").json()
        assert info["geometry"]["units"] == "HU"
        missing = client.get("/api/series/1.2.3.999")
        assert missing.status_code == 404 and missing.json()["detail"]["code"] == "not_found"


def test_thumbnail_is_rendered_and_cached(stack):
    with stack.client("doctor") as client:
        first = client.get(f"/api/series/{stack.study.ct_series_uid}/thumbnail")
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        assert first.content[:2] == b"\xff\xd8"
        again = client.get(f"/api/series/{stack.study.ct_series_uid}/thumbnail")
        assert again.content == first.content


def test_download_of_a_study_as_zip(stack):
    with stack.client("doctor") as client:
        r = client.get(f"/api/studies/{stack.study.study_uid}/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        assert len(names) == len(demo_files(stack.study.out_dir))
        assert all(n.endswith(".dcm") for n in names)
        assert z.read(names[0])[128:132] == b"DICM"


def test_health_reports_backends(stack):
    with httpx.Client(base_url=stack.url) as client:
        body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["catalog"]["reachable"] and all(r["reachable"] for r in body["render"])


def test_openapi_describes_the_routes(stack):
    with httpx.Client(base_url=stack.url) as client:
        doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/api/auth/login",
        "/api/studies",
        "/api/studies/{study_uid}/series",
        "/api/studies/{study_uid}/download",
        "/api/series/{series_uid}",
        "/api/series/{series_uid}/thumbnail",
        "/api/upload",
        "/api/shares",
        "/api/shares/{token}/open",
        "/api/audit",
        "/api/health",
    ):
        assert path in paths, path
    assert "image/jpeg" in paths["/api/series/{series_uid}/thumbnail"]["get"]["responses"]["200"]["content"]
    assert (
        "application/zip" in paths["/api/studies/{study_uid}/download"]["get"]["responses"]["200"]["content"]
    )
    assert "multipart/form-data" in paths["/api/upload"]["post"]["requestBody"]["content"]
