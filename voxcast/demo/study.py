"""A whole synthetic PET/CT study on disk: the CT and PET series of one patient, one visit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxcast.demo.dicomwrite import Modality, Patient, Study, write_volume_series
from voxcast.demo.pet import Injection, pet_attributes, suvbw_per_bqml
from voxcast.demo.phantom import check_seed, demo_uid, make_ct_phantom, make_pet_phantom, size_preset
from voxcast.volume import Volume

STUDY_DATE = "20260105"
STUDY_TIME = "092500"
CT_SERIES_TIME = "092800"
PET_SERIES_TIME = "093200"  # 62 minutes after the injection at 08:30
INJECTION_DATETIME = STUDY_DATE + "083000"
CT_DIR, PET_DIR = "CT", "PT"

_NAMES = (
    "MORIN^CLAIRE",
    "OKAFOR^DANIEL",
    "LINDQVIST^ASTRID",
    "TANAKA^HIROSHI",
    "ROSSI^GIULIA",
    "NOWAK^PIOTR",
)
_SEXES = ("F", "M", "F", "M", "F", "M")


@dataclass
class DemoStudy:
    """What `write_demo_study` wrote, with the ground truth to check readers against."""

    out_dir: Path
    size: str
    seed: int
    patient: Patient
    study: Study
    injection: Injection
    study_uid: str
    ct_series_uid: str
    pet_series_uid: str
    frame_of_reference_uid: str
    ct: Volume  # HU
    pet: Volume  # SUVbw
    suv_per_bqml: float  # SUVbw = Bq/ml * suv_per_bqml
    lesions: list[dict]
    ct_paths: list[Path] = field(default_factory=list)
    pet_paths: list[Path] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready description (no voxels)."""
        return {
            "out_dir": str(self.out_dir),
            "size": self.size,
            "seed": self.seed,
            "patient": {
                "name": self.patient.name,
                "id": self.patient.patient_id,
                "weight_kg": self.patient.weight_kg,
            },
            "study_uid": self.study_uid,
            "accession_number": self.study.accession_number,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "series": [
                _series_summary(
                    "CT", "HU", self.ct_series_uid, self.ct, self.ct_paths, self.out_dir / CT_DIR
                ),
                _series_summary(
                    "PT", "BQML", self.pet_series_uid, self.pet, self.pet_paths, self.out_dir / PET_DIR
                ),
            ],
            "injection": {
                "total_dose_bq": self.injection.total_dose_bq,
                "start_datetime": self.injection.start_datetime,
                "half_life_s": self.injection.half_life_s,
            },
            "suv_per_bqml": self.suv_per_bqml,
            "lesions": self.lesions,
        }


def _series_summary(
    modality: str, stored_units: str, uid: str, volume: Volume, paths: list[Path], folder: Path
) -> dict:
    return {
        "modality": modality,
        "stored_units": stored_units,
        "series_uid": uid,
        "files": len(paths),
        "dir": str(folder),
        "volume_units": volume.units,
        "volume": volume.geometry_dict(),
    }


def demo_patient(seed: int) -> tuple[Patient, Study]:
    rng = np.random.default_rng([seed, 0])
    pick = int(rng.integers(len(_NAMES)))
    patient = Patient(
        name=_NAMES[pick],
        patient_id=f"VX{rng.integers(10**6):06d}",
        birth_date=f"19{rng.integers(40, 80)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}",
        sex=_SEXES[pick],
        weight_kg=round(float(rng.uniform(55.0, 95.0)), 1),
        size_m=round(float(rng.uniform(1.55, 1.90)), 2),
    )
    study = Study(
        description="PET/CT WHOLE BODY",
        date=STUDY_DATE,
        time=STUDY_TIME,
        accession_number=f"A{rng.integers(10**8):08d}",
        study_id=str(1000 + seed),
        referring_physician="HOUSE^GREGORY",
    )
    return patient, study


def _check_target(folder: Path, names: set[str]) -> None:
    """Refuse to mix a new series with leftovers: a folder may only hold files this run rewrites."""
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir() if p.name not in names)
        if others:
            raise FileExistsError(
                f"{folder} already holds other files ({others[0]}, ...); choose an empty --out"
            )


def write_demo_study(out_dir: str | Path, size: str = "small", seed: int = 0) -> DemoStudy:
    """Write the phantom's CT (HU) and PET (Bq/ml) series of one study under out_dir/CT and out_dir/PT.

    Everything (voxels, UIDs, patient, file names) depends only on (size, seed). Writing again into the
    same folder with the same size rewrites the same files.
    """
    check_seed(seed)
    preset = size_preset(size)
    out_dir = Path(out_dir)
    ct_names = {f"IM{i + 1:06d}.dcm" for i in range(preset.ct.shape[0])}
    pet_names = {f"IM{i + 1:06d}.dcm" for i in range(preset.pet.shape[0])}
    _check_target(out_dir / CT_DIR, ct_names)
    _check_target(out_dir / PET_DIR, pet_names)

    patient, study = demo_patient(seed)
    injection = Injection(start_datetime=INJECTION_DATETIME)
    study_uid = demo_uid(size, seed, "study")
    ct = make_ct_phantom(size, seed)
    pet, lesions = make_pet_phantom(ct, seed)
    ct.series_uid = demo_uid(size, seed, "series-ct")
    pet.series_uid = demo_uid(size, seed, "series-pt")
    common = dict(patient=patient, study=study, study_uid=study_uid, seed=seed)
    ct_paths = write_volume_series(
        ct, out_dir / CT_DIR, modality=Modality.CT, series_description="CT WB", series_uid=ct.series_uid,
        series_number=2, series_time=CT_SERIES_TIME, rescale=(1.0, -1024.0), **common,
    )  # fmt: skip
    factor = suvbw_per_bqml(patient.weight_kg, injection, study.date, PET_SERIES_TIME)
    bqml = Volume(pet.voxels / np.float32(factor), pet.affine, pet.frame_of_reference_uid, "PT", "BQML")
    pet_paths = write_volume_series(
        bqml, out_dir / PET_DIR, modality=Modality.PT, series_description="PET WB AC",
        series_uid=pet.series_uid, series_number=3, series_time=PET_SERIES_TIME,
        extra=pet_attributes(injection, pet.shape[0]), **common,
    )  # fmt: skip
    return DemoStudy(
        out_dir=out_dir, size=size, seed=seed, patient=patient, study=study, injection=injection,
        study_uid=study_uid, ct_series_uid=ct.series_uid, pet_series_uid=pet.series_uid,
        frame_of_reference_uid=ct.frame_of_reference_uid, ct=ct, pet=pet, suv_per_bqml=factor,
        lesions=lesions, ct_paths=ct_paths, pet_paths=pet_paths,
    )  # fmt: skip
