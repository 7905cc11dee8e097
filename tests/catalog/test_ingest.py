"""Ingest: every input file ends as one result; bad input is reported, never fatal."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from voxcast.catalog import sources
from voxcast.catalog.ingest import STATUS_NAMES, result_json

REASONS = (
    "not DICOM",
    "no pixel data",
    "unsupported transfer syntax",
    "truncated",
    "corrupt",
    "missing UIDs",
    "invalid UID",
    "empty file",
)


def _statuses(results):
    return [STATUS_NAMES[r.status] for r in results]


@pytest.fixture(scope="module")
def testdata_tree(tmp_path_factory) -> Path:
    """pydicom's test files and the pydicom-data files, copied to a temp folder."""
    import data_store

    root = tmp_path_factory.mktemp("testdata")
    pydicom_files = Path(get_testdata_file("CT_small.dcm")).parent
    shutil.copytree(pydicom_files, root / "pydicom")
    shutil.copytree(Path(data_store.__file__).parent / "data", root / "pydicom-data")
    return root


def test_every_test_file_is_indexed_or_rejected_with_a_reason(catalog, testdata_tree):
    files = sorted(p for p in testdata_tree.rglob("*") if p.is_file())
    results = list(catalog.ingest([testdata_tree]))
    assert len(results) == len(files)
    assert {Path(r.path) for r in results} == set(files)
    for r in results:
        status = STATUS_NAMES[r.status]
        if status == "rejected":
            assert r.reason.startswith(REASONS), (r.path, r.reason)
        else:
            assert r.series_uid and r.sop_instance_uid, r.path
    by_name = {Path(r.path).relative_to(testdata_tree).as_posix(): r for r in results}
    assert STATUS_NAMES[by_name["pydicom/CT_small.dcm"].status] == "indexed"
    assert by_name["pydicom/README.txt"].reason.startswith("not DICOM")
    assert by_name["pydicom/MR_truncated.dcm"].reason.startswith("truncated")
    assert by_name["pydicom/dicomdirtests/DICOMDIR"].reason == "no pixel data (DICOMDIR media directory)"
    counts = Counter(_statuses(results))
    assert counts["indexed"] > 80 and counts["rejected"] > 0

    # Every series is described (volume geometry or the reason it is not one) and volumes decode.
    studies = catalog.search_studies(limit=1000)
    series = [s for st in studies for s in catalog.list_series(st.study_uid)]
    assert sum(s.num_instances for s in series) == counts["indexed"]
    for s in series:
        if s.is_volume:
            volume = catalog.fetch_volume(s.series_uid)
            assert list(volume.shape) == list(s.geometry.shape)
        else:
            assert s.not_volume_reason
    kinds = {s.modality: s for s in series}
    assert not kinds["US"].is_volume and not kinds["CR"].is_volume

    # Re-importing is idempotent: nothing new is indexed.
    again = list(catalog.ingest([testdata_tree]))
    assert len(again) == len(files)
    assert Counter(_statuses(again))["indexed"] == 0
    assert sum(st.num_instances for st in catalog.search_studies(limit=1000)) == counts["indexed"]


def test_truncated_and_non_dicom_files(catalog, src):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (src / "cut_in_pixels.dcm").write_bytes(data[: len(data) - 5000])
    (src / "cut_in_header.dcm").write_bytes(data[:800])
    (src / "notes.txt").write_text("not an image")
    (src / "empty.dcm").write_bytes(b"")
    (src / "random.bin").write_bytes(bytes(range(256)) * 40)
    results = {Path(r.path).name: r for r in catalog.ingest([src, src / "missing.dcm"])}
    assert results["cut_in_pixels.dcm"].reason.startswith("truncated")
    assert results["cut_in_header.dcm"].reason.startswith("truncated")
    assert results["notes.txt"].reason.startswith("not DICOM")
    assert results["empty.dcm"].reason == "empty file"
    assert results["random.bin"].reason.startswith("not DICOM")
    assert results["missing.dcm"].reason == "no such file or directory"
    assert all(STATUS_NAMES[r.status] == "rejected" for r in results.values())


def test_a_bad_file_does_not_abort_the_batch_and_reimport_is_a_duplicate(catalog, src):
    good = src / "good.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), good)
    (src / "bad.dcm").write_bytes(b"DICM" * 10)
    first = list(catalog.ingest([src / "bad.dcm", good]))
    assert _statuses(first) == ["rejected", "indexed"]
    second = list(catalog.ingest([good, src / "bad.dcm"]))
    assert _statuses(second) == ["duplicate", "rejected"]
    assert result_json(second[0]) == {
        "path": str(good),
        "status": "duplicate",
        "series_uid": first[1].series_uid,
        "sop_instance_uid": first[1].sop_instance_uid,
    }
    assert result_json(second[1])["reason"]


def test_missing_uids_and_no_pixel_data(catalog, src):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.SeriesInstanceUID
    ds.save_as(src / "no_series_uid.dcm")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(src / "no_pixels.dcm")
    results = {Path(r.path).name: r.reason for r in catalog.ingest([src])}
    assert results["no_series_uid.dcm"] == "missing UIDs: SeriesInstanceUID"
    assert results["no_pixels.dcm"] == "no pixel data (CT Image Storage)"


def test_unsupported_transfer_syntax_is_rejected(catalog, src):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML  # no decoder exists for video
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" + bytes(100)])
    ds.save_as(src / "video.dcm", enforce_file_format=True)
    (result,) = catalog.ingest([src / "video.dcm"])
    assert result.reason.startswith("unsupported transfer syntax: MPEG2")


def test_encapsulated_pdf_is_indexed_as_not_a_volume(catalog, src):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = EncapsulatedPDFStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.MIMETypeOfEncapsulatedDocument = "DOC", "P1", "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    ds.save_as(src / "report.dcm", enforce_file_format=True)
    (result,) = catalog.ingest([src / "report.dcm"])
    assert STATUS_NAMES[result.status] == "indexed"
    series = catalog.get_series(result.series_uid)
    assert not series.is_volume and "PDF" in series.not_volume_reason
    assert catalog.get_instance(result.sop_instance_uid) == (src / "report.dcm").read_bytes()


def test_zip_entries_cannot_escape_and_are_each_reported(catalog, src):
    archive = src / "upload.zip"
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("study/CT_small.dcm", ct)
        z.writestr("../escape.dcm", ct)
        z.writestr("/abs/path.dcm", ct)
        z.writestr("study/../../up.dcm", ct)
        z.writestr("study/readme.txt", "hello")
        z.writestr("study/dir/", "")
    results = list(catalog.ingest([archive]))
    by_entry = {r.path.split("!", 1)[1]: r for r in results}
    assert set(by_entry) == {"study/CT_small.dcm", "../escape.dcm", "/abs/path.dcm", "study/../../up.dcm",
                             "study/readme.txt"}  # fmt: skip
    assert STATUS_NAMES[by_entry["study/CT_small.dcm"].status] == "indexed"
    for name in ("../escape.dcm", "/abs/path.dcm", "study/../../up.dcm"):
        assert by_entry[name].reason.startswith("unsafe path in archive"), name
    assert by_entry["study/readme.txt"].reason.startswith("not DICOM")
    assert not (src / "escape.dcm").exists() and not (src.parent / "escape.dcm").exists()
    assert not (src / "up.dcm").exists()


def test_zip_bomb_is_bounded(catalog, src, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ENTRY_BYTES", 4 * 1024 * 1024)
    archive = src / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.dcm", bytes(16 * 1024 * 1024))
        z.writestr("ok.dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes())
    results = {r.path.split("!")[1]: r for r in catalog.ingest([archive])}
    assert results["zeros.dcm"].reason.startswith("archive too large")
    assert STATUS_NAMES[results["ok.dcm"].status] == "indexed"


def test_corrupt_zip_is_reported(catalog, src):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a.dcm", b"x" * 1000)
    (src / "broken.zip").write_bytes(buffer.getvalue()[:-30])
    (result,) = catalog.ingest([src / "broken.zip"])
    assert result.reason.startswith("corrupt: bad zip archive")


def test_dicomdir_follows_referenced_files(catalog, src):
    cd = src / "cd"
    shutil.copytree(Path(get_testdata_file("DICOMDIR")).parent, cd)
    results = list(catalog.ingest([cd / "DICOMDIR"]))
    ds = pydicom.dcmread(cd / "DICOMDIR")
    referenced = [r for r in ds.DirectoryRecordSequence if r.get("ReferencedFileID")]
    assert len(results) == 1 + len(referenced)
    assert results[0].reason == "no pixel data (DICOMDIR media directory)"
    paths = {Path(r.path).resolve() for r in results[1:]}
    assert len(paths) == len(referenced)
    # The folder walk and the DICOMDIR references name the same files: each one is read once.
    walk = list(catalog.ingest([cd]))
    assert len(walk) == sum(1 for p in cd.rglob("*") if p.is_file())


def test_dicomdir_reference_to_a_missing_file(catalog, src):
    cd = src / "cd"
    shutil.copytree(Path(get_testdata_file("DICOMDIR")).parent, cd)
    victim = next(p for p in sorted((cd / "77654033" / "CR1").iterdir()))
    victim.unlink()
    results = list(catalog.ingest([cd / "DICOMDIR"]))
    missing = [r for r in results if r.reason == "referenced by DICOMDIR but missing"]
    assert [Path(r.path).name for r in missing] == [victim.name]
