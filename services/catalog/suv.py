"""PET standardised uptake value, body-weight normalised (SUVbw).

SUVbw = activity concentration (Bq/ml) x body weight (g) / injected dose (Bq) decayed to the time
the image activity is referenced to. With DecayCorrection START (the usual) images are decay
corrected to the series start, so the dose is decayed from injection to SeriesTime — or to the
earliest AcquisitionTime when SeriesTime is later (some scanners rewrite it; QIBA's rule).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pydicom.dataset import Dataset


def _parse_time(date: str, time: str) -> datetime | None:
    date, time = (date or "").strip(), (time or "").strip().replace(":", "")
    if len(date) < 8 or len(time) < 2:
        return None
    whole, _, frac = time.partition(".")
    whole = (whole + "0000")[:6]
    try:
        base = datetime.strptime(date[:8] + whole, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return base + timedelta(microseconds=int((frac + "000000")[:6])) if frac.isdigit() else base


def _parse_datetime(value: str) -> datetime | None:
    value = (value or "").strip()
    for sign in "+-":  # drop a UTC offset suffix: all times of one series share it
        if len(value) > 14 and sign in value[8:]:
            value = value[: value.index(sign, 8)]
    return _parse_time(value[:8], value[8:]) if len(value) >= 10 else None


def suvbw_factor(datasets: list[Dataset]) -> tuple[float | None, str]:
    """(factor that turns Bq/ml into SUVbw, '') or (None, why SUVbw cannot be computed)."""
    ds = datasets[0]
    units = str(ds.get("Units", "")).upper()
    if units != "BQML":
        return None, f"PET Units are {units or 'missing'}, not BQML"
    try:
        weight_kg = float(ds.get("PatientWeight") or 0)
    except (TypeError, ValueError):
        weight_kg = 0
    if weight_kg <= 0:
        return None, "PatientWeight is missing"
    info = ds.get("RadiopharmaceuticalInformationSequence")
    if not info:
        return None, "RadiopharmaceuticalInformationSequence is missing"
    item = info[0]
    try:
        dose = float(item.get("RadionuclideTotalDose") or 0)
        half_life = float(item.get("RadionuclideHalfLife") or 0)
    except (TypeError, ValueError):
        dose = half_life = 0
    if dose <= 0 or half_life <= 0:
        return None, "RadionuclideTotalDose or RadionuclideHalfLife is missing"
    correction = str(ds.get("DecayCorrection", "START")).upper()
    if correction == "ADMIN":
        return weight_kg * 1000.0 / dose, ""
    if correction != "START":
        return None, f"DecayCorrection {correction} is not supported"

    series_date = str(ds.get("SeriesDate", "") or ds.get("AcquisitionDate", "") or ds.get("StudyDate", ""))
    injection = _parse_datetime(str(item.get("RadiopharmaceuticalStartDateTime", "")))
    injection_from_time_only = injection is None
    if injection is None:
        injection = _parse_time(series_date, str(item.get("RadiopharmaceuticalStartTime", "")))
    reference = _parse_time(series_date, str(ds.get("SeriesTime", "")))
    acquisitions = [
        t
        for d in datasets
        if (
            t := _parse_time(
                str(d.get("AcquisitionDate", "") or series_date), str(d.get("AcquisitionTime", ""))
            )
        )
    ]
    if acquisitions and (reference is None or min(acquisitions) < reference):
        reference = min(acquisitions)
    if injection is None or reference is None:
        return None, "injection time or SeriesTime/AcquisitionTime is missing"
    elapsed = (reference - injection).total_seconds()
    if elapsed < 0 and injection_from_time_only:
        elapsed += 86400.0  # injected before midnight, scanned after
    if elapsed < 0:
        return None, "injection time is after the series start"
    decayed = dose * math.exp(-math.log(2.0) * elapsed / half_life)
    return weight_kg * 1000.0 / decayed, ""
