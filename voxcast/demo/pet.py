"""PET tags and the SUVbw formula the demo data follows (the catalog's reader, voxcast.catalog.suv,
computes the same factor back from the tags).

SUVbw = C * W / D(t), where
- C is the voxel's activity concentration in Bq/ml (stored value * RescaleSlope + RescaleIntercept, Units
  BQML, decay corrected to the series start: DecayCorrection START, CorrectedImage with DECY and ATTN);
- W is PatientWeight in grams (kg * 1000; tissue is taken as 1 g/ml);
- D(t) = RadionuclideTotalDose * 2 ** (-t / RadionuclideHalfLife), the injected activity decayed from
  RadiopharmaceuticalStartDateTime (or SeriesDate + RadiopharmaceuticalStartTime) to the series
  reference time SeriesDate + SeriesTime; t in seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import DA, DT, TM

from voxcast.demo.dicomwrite import ds_number

F18_HALF_LIFE_S = 6586.2
F18_POSITRON_FRACTION = 0.9673


@dataclass(frozen=True)
class Injection:
    """The radiopharmaceutical administration of a PET study (F-18 FDG by default)."""

    total_dose_bq: float = 370e6
    start_datetime: str = "20260105083000"  # DICOM DT
    half_life_s: float = F18_HALF_LIFE_S
    positron_fraction: float = F18_POSITRON_FRACTION
    radiopharmaceutical: str = "Fluorodeoxyglucose"

    def decayed_dose_bq(self, at: dt.datetime) -> float:
        elapsed = (at - parse_dt(self.start_datetime)).total_seconds()
        return decayed_dose(self.total_dose_bq, self.half_life_s, elapsed)


def decayed_dose(total_dose_bq: float, half_life_s: float, elapsed_s: float) -> float:
    return total_dose_bq * 2.0 ** (-elapsed_s / half_life_s)


def parse_dt(value: str) -> dt.datetime:
    return DT(value).replace(tzinfo=None)


def series_datetime(date: str, time: str) -> dt.datetime:
    return dt.datetime.combine(DA(date), TM(time))


def suvbw_per_bqml(weight_kg: float, injection: Injection, series_date: str, series_time: str) -> float:
    """The factor turning Bq/ml into SUVbw: W(g) / D(series start)."""
    if not weight_kg > 0:
        raise ValueError(f"patient weight must be positive, got {weight_kg}")
    dose = injection.decayed_dose_bq(series_datetime(series_date, series_time))
    return weight_kg * 1000.0 / dose


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def radiopharmaceutical_item(injection: Injection) -> Dataset:
    item = Dataset()
    item.Radiopharmaceutical = injection.radiopharmaceutical
    item.RadiopharmaceuticalStartTime = injection.start_datetime[8:]
    item.RadiopharmaceuticalStartDateTime = injection.start_datetime
    item.RadionuclideTotalDose = ds_number(injection.total_dose_bq)
    item.RadionuclideHalfLife = ds_number(injection.half_life_s)
    item.RadionuclidePositronFraction = ds_number(injection.positron_fraction)
    item.RadionuclideCodeSequence = DicomSequence([_code("C-111A1", "SRT", "^18^Fluorine")])
    item.RadiopharmaceuticalCodeSequence = DicomSequence(
        [_code("C-B1031", "SRT", "Fluorodeoxyglucose F^18^")]
    )
    return item


def pet_attributes(injection: Injection, n_slices: int) -> Callable[[Dataset, int], None]:
    """The `extra` hook that makes a written series a quantitative PET (Bq/ml, decay corrected)."""

    def add(ds: Dataset, slice_index: int) -> None:
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"]
        ds.RandomsCorrectionMethod = "DLYD"
        ds.AttenuationCorrectionMethod = "CT-based"
        ds.ReconstructionMethod = "OSEM 3i21s"
        ds.ActualFrameDuration = 120000
        ds.FrameReferenceTime = "0"
        ds.DecayFactor = "1"
        ds.NumberOfSlices = n_slices
        ds.ImageIndex = slice_index + 1
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([radiopharmaceutical_item(injection)])

    return add
