"""Write a `Volume` as DICOM: one single-frame instance per slice, or one enhanced multi-frame object.

The geometry tags come from the Volume's affine (index (slice, row, column) -> LPS mm):
- ImagePositionPatient of slice k = world position of voxel (k, 0, 0);
- ImageOrientationPatient = row cosine (the direction in which the column index grows, `direction[2]`)
  followed by the column cosine (the direction in which the row index grows, `direction[1]`);
- PixelSpacing = [spacing between rows, spacing between columns] = [spacing[1], spacing[2]].

Stored values are 16-bit integers; RescaleSlope/RescaleIntercept bring them back to modality units.
File order, file names and InstanceNumbers can be scrambled on purpose: a reader must sort slices by
their position along the slice normal, never by name or number.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from voxcast.volume import Volume

IMPLEMENTATION_VERSION_NAME = "VOXCAST_010"


class Modality(enum.StrEnum):
    """Modality (0008,0060) defined terms this writer knows an image storage SOP class for."""

    CT = "CT"
    PT = "PT"
    MR = "MR"


SOP_CLASS = {
    Modality.CT: CTImageStorage,
    Modality.PT: PositronEmissionTomographyImageStorage,
    Modality.MR: MRImageStorage,
}


class FileOrder(enum.StrEnum):
    """Order in which slices are written to disk (and numbered in file names)."""

    SORTED = "sorted"
    REVERSED = "reversed"
    SHUFFLED = "shuffled"


class InstanceNumbers(enum.StrEnum):
    """How InstanceNumber (0020,0013) relates to the slice index."""

    ASCENDING = "ascending"
    DESCENDING = "descending"
    RANDOM = "random"


@dataclass(frozen=True)
class Patient:
    name: str = "DEMO^PATIENT"
    patient_id: str = "VXDEMO0001"
    birth_date: str = "19580412"
    sex: str = "F"
    weight_kg: float = 72.0
    size_m: float = 1.68


@dataclass(frozen=True)
class Study:
    """Study-level attributes other than the StudyInstanceUID."""

    description: str = ""
    date: str = "20260105"
    time: str = "091500"
    accession_number: str = ""
    study_id: str = "1"
    referring_physician: str = ""


# (slope, intercept) for every slice at once; "per-slice" gives each slice its own slope (PET style).
Rescale = tuple[float, float] | str | None
PER_SLICE = "per-slice"
INT16 = (-32768, 32767)
UINT16 = (0, 65535)


def _enum(kind: type[enum.Enum], value) -> enum.Enum:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise ValueError(f"unknown {kind.__name__} {value!r}; known: {known}") from None


def ds_numbers(values) -> list[str]:
    """Decimal strings (DS, at most 16 characters) keeping as many digits as fit."""
    return [ds_number(v) for v in np.ravel(values)]


def ds_number(value) -> str:
    """One decimal string: the shortest exact repr when it fits 16 characters, else rounded to fit."""
    text = repr(float(value))
    if text.endswith(".0"):
        text = text[:-2]
    return text if len(text) <= 16 and "e" not in text else format_number_as_ds(float(value))


def _deterministic_uid(*parts) -> UID:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


@dataclass(frozen=True)
class StoredSlices:
    """How modality values become stored integers: value = stored * slope + intercept, per slice.

    Slices are converted on demand (`pixels(k)`), so a large volume never has a float copy in memory.
    """

    voxels: np.ndarray  # modality values, [slice, row, column]
    slopes: np.ndarray  # one per slice
    intercepts: np.ndarray  # one per slice
    dtype: type  # np.int16 or np.uint16

    @property
    def signed(self) -> bool:
        return self.dtype is np.int16

    def pixels(self, k: int) -> np.ndarray:
        slope, intercept = self.slopes[k], self.intercepts[k]
        plane = self.voxels[k]
        if np.issubdtype(plane.dtype, np.integer) and slope == 1.0 and intercept == int(intercept):
            # Integer HU with a whole intercept: exact integer arithmetic, no float pass.
            return (plane.astype(np.int32) - int(intercept)).astype(self.dtype)
        values = (self.voxels[k].astype(np.float64) - self.intercepts[k]) / self.slopes[k]
        info = np.iinfo(self.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(self.dtype)


def _slice_extremes(voxels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = voxels.reshape(voxels.shape[0], -1)
    lo, hi = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("voxels contain NaN or infinity; DICOM stored values cannot represent them")
    return lo, hi


def _is_integral(voxels: np.ndarray) -> bool:
    if np.issubdtype(voxels.dtype, np.integer):
        return True
    return all(np.array_equal(plane, np.round(plane)) for plane in voxels)


def quantize(voxels: np.ndarray, rescale: Rescale = None) -> StoredSlices:
    """Choose stored integers and a rescale for `voxels` (modality units).

    None picks: integer values that fit int16 -> slope 1, intercept 0; anything else -> per slice.
    Per slice: intercept 0, slope = max |value| / 32767 of that slice, so each slice uses the full int16
    range (what PET scanners do). A fixed (slope, intercept) must map every value into int16 or uint16:
    uint16 when the intercept is negative (CT's stored = HU + 1024), int16 otherwise, unless only the
    other type holds them.
    """
    voxels = np.asarray(voxels)
    n = voxels.shape[0]
    lo, hi = _slice_extremes(voxels)
    if rescale is None:
        integral_fits = INT16[0] <= lo.min() and hi.max() <= INT16[1] and _is_integral(voxels)
        rescale = (1.0, 0.0) if integral_fits else PER_SLICE
    if isinstance(rescale, str):
        if rescale != PER_SLICE:
            raise ValueError(f"rescale must be (slope, intercept), {PER_SLICE!r} or None, got {rescale!r}")
        peak = np.maximum(np.abs(lo), np.abs(hi))
        slopes = np.where(peak > 0, peak / INT16[1], 1.0)
        return StoredSlices(voxels, slopes, np.zeros(n), np.int16)
    slope, intercept = (float(rescale[0]), float(rescale[1]))
    if not slope > 0:
        raise ValueError(f"rescale slope must be positive, got {slope}")
    stored_lo, stored_hi = np.rint((lo.min() - intercept) / slope), np.rint((hi.max() - intercept) / slope)
    candidates = ((np.uint16, UINT16), (np.int16, INT16))
    if intercept >= 0:
        candidates = candidates[::-1]
    dtype = next((t for t, (tlo, thi) in candidates if tlo <= stored_lo and stored_hi <= thi), None)
    if dtype is None:
        raise ValueError(
            f"rescale (slope={slope}, intercept={intercept}) maps values to stored range "
            f"[{stored_lo:g}, {stored_hi:g}], which fits neither int16 nor uint16"
        )
    return StoredSlices(voxels, np.full(n, slope), np.full(n, intercept), dtype)


def _slice_order(n: int, file_order: FileOrder, rng: np.random.Generator) -> np.ndarray:
    if file_order is FileOrder.SORTED:
        return np.arange(n)
    if file_order is FileOrder.REVERSED:
        return np.arange(n)[::-1]
    return rng.permutation(n)


def _instance_numbers(n: int, kind: InstanceNumbers, rng: np.random.Generator) -> np.ndarray:
    if kind is InstanceNumbers.ASCENDING:
        return np.arange(1, n + 1)
    if kind is InstanceNumbers.DESCENDING:
        return np.arange(n, 0, -1)
    return rng.permutation(n) + 1


def _file_names(n: int, file_order: FileOrder, rng: np.random.Generator) -> list[str]:
    if file_order is FileOrder.SHUFFLED:
        # Random names: nothing about a name tells where its slice lies.
        return [f"{int(v):016x}.dcm" for v in rng.integers(0, 2**63, size=n, dtype=np.int64)]
    return [f"IM{i + 1:06d}.dcm" for i in range(n)]


def _base_dataset(
    sop_class: UID,
    modality: Modality,
    patient: Patient,
    study: Study,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    series_description: str,
    series_number: int,
    series_time: str,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series_time or study.time
    ds.AccessionNumber = study.accession_number
    ds.Modality = modality.value
    ds.Manufacturer = "voxcast"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.InstitutionName = "voxcast demo"
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyDescription = study.description
    ds.SeriesDescription = series_description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientWeight = ds_number(patient.weight_kg)
    ds.PatientSize = ds_number(patient.size_m)
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "WHOLEBODY"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series_number
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def _check_volume(volume: Volume) -> None:
    if not isinstance(volume, Volume):
        raise TypeError(f"expected a voxcast.volume.Volume, got {type(volume).__name__}")
    if min(volume.shape) < 1:
        raise ValueError(f"cannot write an empty volume of shape {volume.shape}")
    d = volume.direction
    if not np.allclose(d @ d.T, np.eye(3), atol=1e-6):
        raise ValueError("DICOM images need orthogonal index axes; this volume's affine is sheared")


def _set_pixels(ds: Dataset, pixels: np.ndarray, signed: bool, transfer_syntax: UID) -> None:
    ds.Rows, ds.Columns = int(pixels.shape[-2]), int(pixels.shape[-1])
    ds.PixelRepresentation = 1 if signed else 0
    if transfer_syntax.is_compressed:
        # pydicom's encoders (RLE natively, JPEG-LS / JPEG 2000 through plugins) set PixelData.
        ds.compress(transfer_syntax, np.ascontiguousarray(pixels))
    else:
        ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()


def _file_meta(ds: Dataset, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _save(ds: Dataset, path: Path, transfer_syntax: UID) -> None:
    ds.file_meta = _file_meta(ds, transfer_syntax)
    ds.save_as(path, enforce_file_format=True, implicit_vr=transfer_syntax == ImplicitVRLittleEndian)


def _uids(volume: Volume, study_uid, series_uid) -> tuple[str, str, str]:
    return (
        study_uid or generate_uid(),
        series_uid or volume.series_uid or generate_uid(),
        volume.frame_of_reference_uid or generate_uid(),
    )


def write_volume_series(
    volume: Volume,
    out_dir: str | Path,
    *,
    modality: Modality | str = Modality.CT,
    patient: Patient = Patient(),
    study: Study = Study(),
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_description: str = "",
    series_number: int = 1,
    series_time: str = "",
    file_order: FileOrder | str = FileOrder.SORTED,
    instance_numbers: InstanceNumbers | str = InstanceNumbers.ASCENDING,
    seed: int = 0,
    rescale: Rescale = None,
    extra: Callable[[Dataset, int], None] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> list[Path]:
    """Write `volume` (values in modality units) as one single-frame DICOM file per slice.

    UIDs not given are new random ones (study, series; the frame of reference comes from the Volume when
    it has one). SOP instance UIDs derive from the series UID and the slice index, so writing the same
    series twice gives the same instances. `seed` drives shuffled file order, random file names and
    random InstanceNumbers. `extra(ds, slice_index)` may add or replace attributes of each slice before
    it is saved (assign, never mutate a value in place: slices share the unchanged elements).
    SeriesTime, AcquisitionTime and ContentTime are `series_time`, by default the study's time.
    Returns the paths in the order written.
    """
    _check_volume(volume)
    modality = _enum(Modality, modality)
    file_order = _enum(FileOrder, file_order)
    instance_numbers = _enum(InstanceNumbers, instance_numbers)
    transfer_syntax = UID(transfer_syntax)
    if not transfer_syntax.is_transfer_syntax:
        raise ValueError(f"{transfer_syntax!r} is not a transfer syntax UID")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study_uid, series_uid, for_uid = _uids(volume, study_uid, series_uid)
    stored = quantize(volume.voxels, rescale)
    n = volume.shape[0]
    order = _slice_order(n, file_order, rng)
    numbers = _instance_numbers(n, instance_numbers, rng)
    names = _file_names(n, file_order, rng)
    spacing, direction = volume.spacing, volume.direction
    # What every slice shares is built once; each slice starts from a shallow copy of it.
    template = _base_dataset(
        SOP_CLASS[modality], modality, patient, study, study_uid, series_uid, for_uid,
        series_description, series_number, series_time,
    )  # fmt: skip
    template.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    template.ImageOrientationPatient = ds_numbers(np.concatenate([direction[2], direction[1]]))
    template.PixelSpacing = ds_numbers([spacing[1], spacing[2]])
    template.SliceThickness = ds_number(spacing[0])
    template.RescaleType = "HU" if modality is Modality.CT else "US"
    if modality is Modality.CT:
        template.KVP = "120"
        template.WindowCenter, template.WindowWidth = "40", "400"
    paths = []
    for write_index, k in enumerate(order):
        k = int(k)
        ds = Dataset(dict(template.items()))
        ds.SOPInstanceUID = _deterministic_uid(series_uid, "slice", k)
        ds.InstanceNumber = int(numbers[k])
        position = volume.index_to_world((k, 0, 0))
        ds.ImagePositionPatient = ds_numbers(position)
        ds.SliceLocation = ds_number(position @ direction[0])
        ds.RescaleIntercept = ds_number(stored.intercepts[k])
        ds.RescaleSlope = ds_number(stored.slopes[k])
        _set_pixels(ds, stored.pixels(k), stored.signed, transfer_syntax)
        if extra is not None:
            extra(ds, k)
        path = out_dir / names[write_index]
        _save(ds, path, transfer_syntax)
        paths.append(path)
    return paths


def write_multiframe(
    volume: Volume,
    path: str | Path,
    *,
    patient: Patient = Patient(),
    study: Study = Study(),
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_description: str = "",
    series_number: int = 1,
    series_time: str = "",
    frame_order: FileOrder | str = FileOrder.SORTED,
    seed: int = 0,
    rescale: Rescale = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Path:
    """Write `volume` (HU) as one Enhanced CT Image object, one frame per slice.

    Geometry lives in the functional groups: PixelMeasures and PlaneOrientation are shared, each frame
    has its own PlanePosition. `frame_order` scrambles the order of frames in the file (the
    InStackPositionNumber still gives each frame's place along the stack, 1 = slice 0). The rescale is
    one (slope, intercept) for all frames, as the shared PixelValueTransformation requires.
    """
    _check_volume(volume)
    frame_order = _enum(FileOrder, frame_order)
    transfer_syntax = UID(transfer_syntax)
    if rescale == PER_SLICE:
        raise ValueError("an enhanced CT object has one shared rescale; per-slice rescale is not possible")
    stored = quantize(volume.voxels, rescale)
    if not np.allclose(stored.slopes, stored.slopes[0]):
        # Auto rescale chose per-slice slopes: fall back to one slope spanning the whole volume.
        peak = float(np.max(stored.slopes)) * INT16[1]
        stored = quantize(volume.voxels, (peak / INT16[1], 0.0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study_uid, series_uid, for_uid = _uids(volume, study_uid, series_uid)
    n = volume.shape[0]
    order = _slice_order(n, frame_order, rng)
    spacing, direction = volume.spacing, volume.direction

    ds = _base_dataset(
        EnhancedCTImageStorage, Modality.CT, patient, study, study_uid, series_uid, for_uid,
        series_description, series_number, series_time,
    )  # fmt: skip
    ds.SOPInstanceUID = _deterministic_uid(series_uid, "multiframe")
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ContentQualification = "PRODUCT"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionDateTime = study.date + study.time
    ds.NumberOfFrames = n

    dimension_org_uid = _deterministic_uid(series_uid, "dimension-organization")
    organization = Dataset()
    organization.DimensionOrganizationUID = dimension_org_uid
    ds.DimensionOrganizationSequence = DicomSequence([organization])
    ds.DimensionOrganizationType = "3D"
    index_items = []
    for pointer, functional_group, label in (
        (0x00209056, 0x00209111, "Stack ID"),  # StackID in FrameContentSequence
        (0x00209057, 0x00209111, "In-Stack Position Number"),
    ):
        item = Dataset()
        item.DimensionOrganizationUID = dimension_org_uid
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = functional_group
        item.DimensionDescriptionLabel = label
        index_items.append(item)
    ds.DimensionIndexSequence = DicomSequence(index_items)

    measures = Dataset()
    measures.PixelSpacing = ds_numbers([spacing[1], spacing[2]])
    measures.SliceThickness = ds_number(spacing[0])
    measures.SpacingBetweenSlices = ds_number(spacing[0])
    plane_orientation = Dataset()
    plane_orientation.ImageOrientationPatient = ds_numbers(np.concatenate([direction[2], direction[1]]))
    transformation = Dataset()
    transformation.RescaleIntercept = ds_number(stored.intercepts[0])
    transformation.RescaleSlope = ds_number(stored.slopes[0])
    transformation.RescaleType = "HU"
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    frame_type.PixelPresentation = "MONOCHROME"
    frame_type.VolumetricProperties = "VOLUME"
    frame_type.VolumeBasedCalculationTechnique = "NONE"
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = "40", "400"
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([plane_orientation])
    shared.PixelValueTransformationSequence = DicomSequence([transformation])
    shared.CTImageFrameTypeSequence = DicomSequence([frame_type])
    shared.FrameVOILUTSequence = DicomSequence([voi])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for k in order:
        k = int(k)
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        content.DimensionIndexValues = [1, k + 1]
        position = Dataset()
        position.ImagePositionPatient = ds_numbers(volume.index_to_world((k, 0, 0)))
        item = Dataset()
        item.FrameContentSequence = DicomSequence([content])
        item.PlanePositionSequence = DicomSequence([position])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    _set_pixels(ds, np.stack([stored.pixels(int(k)) for k in order]), stored.signed, transfer_syntax)
    _save(ds, path, transfer_syntax)
    return path


def rotation_matrix(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    """Rotation about `axis` (LPS) by `angle_deg`, right-handed: for building oblique test volumes."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    a = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)
