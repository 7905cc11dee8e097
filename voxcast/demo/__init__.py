"""Synthetic PET/CT studies as valid DICOM: what `voxcast demo` writes, and what tests and benchmarks use.

- `dicomwrite`: any `Volume` as a single-frame series (with scrambled order on request) or a multi-frame
  enhanced CT object;
- `phantom`: the synthetic torso as a CT (HU) and a PET (SUVbw) Volume, with lesions of known SUV;
- `pet`: the PET tags and the SUVbw formula;
- `study`: both series of one study written to a folder.
"""

from voxcast.demo.cli import register
from voxcast.demo.dicomwrite import (
    FileOrder,
    InstanceNumbers,
    Modality,
    Patient,
    Study,
    rotation_matrix,
    write_multiframe,
    write_volume_series,
)
from voxcast.demo.pet import Injection, suvbw_per_bqml
from voxcast.demo.phantom import SIZES, make_ct_phantom, make_pet_phantom
from voxcast.demo.study import DemoStudy, write_demo_study

__all__ = [
    "SIZES",
    "DemoStudy",
    "FileOrder",
    "Injection",
    "InstanceNumbers",
    "Modality",
    "Patient",
    "Study",
    "make_ct_phantom",
    "make_pet_phantom",
    "register",
    "rotation_matrix",
    "suvbw_per_bqml",
    "write_demo_study",
    "write_multiframe",
    "write_volume_series",
]
