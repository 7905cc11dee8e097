"""PET in SUVbw from the DICOM tags, and the fallback to Bq/ml when tags are missing."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from voxcast.catalog.suv import suvbw_factor


def test_demo_pet_reads_back_in_suvbw(catalog, demo_study):
    results = list(catalog.ingest([demo_study.out_dir / "PT"]))
    volume = catalog.fetch_volume(results[0].series_uid)
    assert volume.units == "SUVbw" and volume.voxels.dtype == np.float32 and not volume.warnings
    want = demo_study.pet
    np.testing.assert_allclose(volume.affine, want.affine, atol=1e-4)
    # Stored values are 16-bit with a per-slice slope: allow the quantisation step.
    np.testing.assert_allclose(volume.voxels, want.voxels, atol=float(want.voxels.max()) / 30000 + 1e-4)
    for lesion in demo_study.lesions:
        index = np.round(volume.world_to_index(lesion["center_lps"])).astype(int)
        assert volume.voxels[tuple(index)] == pytest.approx(lesion["suv"], rel=1e-3)


def test_missing_weight_falls_back_to_bqml_and_says_so(catalog, demo_study, src):
    folder = src / "PT"
    shutil.copytree(demo_study.out_dir / "PT", folder)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        del ds.PatientWeight
        ds.save_as(path)
    results = list(catalog.ingest([folder]))
    series = catalog.get_series(results[0].series_uid)
    assert series.geometry.units == "BQML"
    assert any("not SUVbw: PatientWeight is missing" in w for w in series.geometry.warnings)
    volume = catalog.fetch_volume(results[0].series_uid)
    np.testing.assert_allclose(
        volume.voxels * demo_study.suv_per_bqml,
        demo_study.pet.voxels,
        atol=float(demo_study.pet.voxels.max()) / 3e4,
    )


def _pet(series_time="100000", acquisition_time="100000", injection_time="090000", correction="START"):
    ds = Dataset()
    ds.Units, ds.DecayCorrection, ds.PatientWeight = "BQML", correction, "80"
    ds.SeriesDate, ds.SeriesTime = "20260105", series_time
    ds.AcquisitionDate, ds.AcquisitionTime = "20260105", acquisition_time
    item = Dataset()
    item.RadiopharmaceuticalStartTime = injection_time
    item.RadionuclideTotalDose, item.RadionuclideHalfLife = "400000000", "6586.2"
    ds.RadiopharmaceuticalInformationSequence = [item]
    return ds


def test_suvbw_factor_decays_the_dose_to_the_series_start():
    factor, why = suvbw_factor([_pet()])
    assert why == ""
    assert factor == pytest.approx(80_000 / (4e8 * 2 ** (-3600 / 6586.2)))


def test_suvbw_factor_edge_cases():
    # Injection before midnight, scan after it (times only).
    late, _ = suvbw_factor([_pet(series_time="003000", acquisition_time="003000", injection_time="233000")])
    assert late == pytest.approx(80_000 / (4e8 * 2 ** (-3600 / 6586.2)))
    # A SeriesTime later than the first acquisition: the acquisition is the reference (QIBA).
    early, _ = suvbw_factor([_pet(series_time="110000", acquisition_time="100000")])
    assert early == pytest.approx(suvbw_factor([_pet()])[0])
    # Images decay corrected to the administration time: no decay of the dose.
    admin, _ = suvbw_factor([_pet(correction="ADMIN")])
    assert admin == pytest.approx(80_000 / 4e8)
    ds = _pet()
    ds.Units = "CNTS"
    assert suvbw_factor([ds]) == (None, "PET Units are CNTS, not BQML")
    ds = _pet()
    del ds.RadiopharmaceuticalInformationSequence
    assert suvbw_factor([ds])[0] is None
