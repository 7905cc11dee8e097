"""The demo PET/CT study on disk, and the `voxcast demo` command."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pydicom
import pytest
from demo_oracle import assert_same_voxels, dicom_files, read_series

from voxcast.cli import main
from voxcast.demo import write_demo_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_demo_study(tmp_path_factory.mktemp("demo"), size="small", seed=0)


def independent_suv_factor(ds) -> float:
    """SUVbw per Bq/ml written out from the DICOM definitions, without the package's helper."""
    info = ds.RadiopharmaceuticalInformationSequence[0]
    start = dt.datetime.strptime(info.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    series = dt.datetime.strptime(ds.SeriesDate + ds.SeriesTime[:6], "%Y%m%d%H%M%S")
    decayed = float(info.RadionuclideTotalDose) * np.exp(
        -np.log(2) * (series - start).total_seconds() / float(info.RadionuclideHalfLife)
    )
    return float(ds.PatientWeight) * 1000.0 / decayed


def test_both_series_are_valid_dicom_of_one_study(study):
    ct = [pydicom.dcmread(p) for p in study.ct_paths]
    pet = [pydicom.dcmread(p) for p in study.pet_paths]
    assert len(ct) == 48 and len(pet) == 42
    assert dicom_files(study.out_dir / "CT") == sorted(study.ct_paths)
    for ds in ct + pet:
        assert ds.StudyInstanceUID == study.study_uid
        assert ds.FrameOfReferenceUID == study.frame_of_reference_uid
        assert ds.PatientName == study.patient.name and ds.PatientID == study.patient.patient_id
        assert (
            ds.StudyDescription == "PET/CT WHOLE BODY" and ds.AccessionNumber == study.study.accession_number
        )
    assert {ds.SeriesInstanceUID for ds in ct} == {study.ct_series_uid}
    assert {ds.SeriesInstanceUID for ds in pet} == {study.pet_series_uid}
    assert {ds.Modality for ds in ct} == {"CT"} and {ds.Modality for ds in pet} == {"PT"}
    assert len({ds.SOPInstanceUID for ds in ct + pet}) == 90


def test_ct_files_give_back_the_phantom_in_hu(study):
    read = read_series(study.ct_paths)
    assert np.allclose(read.affine, study.ct.affine)
    assert_same_voxels(study.ct, read)
    ds = pydicom.dcmread(study.ct_paths[0])
    assert float(ds.RescaleIntercept) == -1024.0 and ds.RescaleType == "HU" and ds.PixelRepresentation == 0


def test_pet_tags_make_suv_computable(study):
    ds = pydicom.dcmread(study.pet_paths[0])
    assert ds.Units == "BQML" and ds.DecayCorrection == "START"
    assert {"DECY", "ATTN"} <= set(ds.CorrectedImage)
    info = ds.RadiopharmaceuticalInformationSequence[0]
    assert float(info.RadionuclideHalfLife) == 6586.2 and float(info.RadionuclideTotalDose) > 0
    assert info.RadiopharmaceuticalStartTime == "083000"
    assert float(ds.PatientWeight) == study.patient.weight_kg
    assert ds.SeriesTime == ds.AcquisitionTime == "093200"
    assert independent_suv_factor(ds) == pytest.approx(study.suv_per_bqml, rel=1e-9)


def test_pet_files_give_back_the_lesion_suvs(study):
    bqml = read_series(study.pet_paths)
    factor = independent_suv_factor(pydicom.dcmread(study.pet_paths[0]))
    assert np.allclose(bqml.affine, study.pet.affine)
    suv = bqml.voxels * factor
    tolerance = 12.0 / 32767  # one stored step of the hottest slice
    assert_same_voxels(study.pet, type(bqml)(suv, bqml.affine), atol=tolerance)
    for lesion in study.lesions:
        k, r, c = np.rint(bqml.world_to_index(lesion["center_lps"])).astype(int)
        assert suv[k, r, c] == pytest.approx(lesion["suv"], abs=tolerance)


def test_same_seed_same_files_other_seed_other_study(study, tmp_path):
    again = write_demo_study(tmp_path / "again", size="small", seed=0)
    assert again.study_uid == study.study_uid and again.pet_series_uid == study.pet_series_uid
    for a, b in zip(study.ct_paths + study.pet_paths, again.ct_paths + again.pet_paths, strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()
    other = write_demo_study(tmp_path / "other", size="small", seed=1)
    assert other.study_uid != study.study_uid and other.frame_of_reference_uid != study.frame_of_reference_uid
    assert other.patient != study.patient or other.study.accession_number != study.study.accession_number


def test_rewriting_is_allowed_but_mixing_is_refused(tmp_path):
    write_demo_study(tmp_path, size="small", seed=0)
    write_demo_study(tmp_path, size="small", seed=2)  # same file names: replaced
    (tmp_path / "PT" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_demo_study(tmp_path, size="small", seed=0)
    assert (tmp_path / "PT" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="known: small, medium, large"):
        write_demo_study(tmp_path / "x", size="tiny")


def test_cli_prints_one_line_per_series(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CT   48 files  64x64x48") and str(tmp_path / "CT") in lines[0]
    assert lines[1].startswith("PT   42 files  40x40x42") and "BQML" in lines[1]
    assert lines[2].startswith("study ")
    assert len(dicom_files(tmp_path / "CT")) == 48


def test_cli_json_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ct, pet = summary["series"]
    assert (ct["modality"], ct["files"], ct["volume"]["shape"]) == ("CT", 48, [48, 64, 64])
    assert pet["volume"]["spacing_mm"] == [12.0, 12.5, 12.5] and pet["volume_units"] == "SUVbw"
    assert [lesion["suv"] for lesion in summary["lesions"]] == [4.0, 8.0, 12.0]
    assert summary["suv_per_bqml"] > 0 and summary["seconds"] >= 0


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path), "--size", "huge"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path), "--seed", "-4"])
    assert "must be >= 0" in capsys.readouterr().err
    (tmp_path / "CT").mkdir()
    (tmp_path / "CT" / "other.dcm").write_bytes(b"x")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "already holds other files" in capsys.readouterr().err
