"""Synthetic PET/CT studies as valid DICOM: what `voxcast demo` writes, and what tests and benchmarks use."""
