"""Volume assembly: a series' DICOM instances -> `voxcast.volume.Volume` (voxels + affine).

Two steps. `plan_series` works from headers only (no pixel decoding): it collects every frame
(single-frame instances, enhanced multi-frame functional groups, or multi-frame objects with one
shared geometry), keeps the largest group of frames that share orientation, size and pixel spacing,
sorts them by position along the slice normal (never by InstanceNumber or file name), and checks
that they are evenly spaced. `load_volume` then decodes pixels frame by frame and rescales them to
modality units (HU; SUVbw for PET when the tags allow it): int16 when every rescale is integral and
the values fit, float32 otherwise.

Slice spacing policy: a volume needs one uniform slice step for its affine. Steps may deviate from
the mean step by SPACING_TOLERANCE (relative) plus a small absolute slack for rounded DS strings;
within that the series is a volume and any visible jitter is reported as a warning. Beyond it (a gap
from a missing slice, variable-thickness acquisitions) the series is *not* a volume and the reason
names the offending steps: resampling it onto a uniform grid would invent voxels, stretching it would
put anatomy in the wrong place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from voxcast.volume import Volume

from .dicomfile import DOCUMENT_SOP_CLASSES, sop_class
from .errors import NotAVolume
from .suv import suvbw_factor

SPACING_TOLERANCE = 0.01  # relative deviation of a slice step from the mean step
SPACING_SLACK_MM = 0.002  # absolute slack: DS strings carry few decimals
ORIENTATION_DECIMALS = 4
INT16 = np.iinfo(np.int16)


@dataclass
class Frame:
    """One 2-D image: frame `index` of dataset `source`, with its own geometry and rescale."""

    source: int
    index: int
    multiframe: bool
    position: np.ndarray | None
    orientation: np.ndarray | None  # ImageOrientationPatient: row cosine, then column cosine
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns)
    rows: int
    columns: int
    slope: float
    intercept: float

    def group_key(self) -> tuple:
        return (
            tuple(np.round(self.orientation, ORIENTATION_DECIMALS)),
            self.rows,
            self.columns,
            tuple(round(v, 4) for v in self.pixel_spacing),
        )


@dataclass
class Plan:
    """A series' geometry and how to fill its voxels, decided from headers alone."""

    frames: list[Frame]
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    units: str
    dtype: str
    scale: float = 1.0
    modality: str = ""
    frame_of_reference_uid: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.frames), self.frames[0].rows, self.frames[0].columns)

    def info(self) -> dict[str, Any]:
        """JSON-able summary, cached in the index for GetSeries."""
        return {
            "is_volume": True,
            "shape": list(self.shape),
            "spacing": [float(v) for v in self.spacing],
            "origin": [float(v) for v in self.origin],
            "direction": [float(v) for v in self.direction.ravel()],
            "units": self.units,
            "dtype": self.dtype,
            "modality": self.modality,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "warnings": list(self.warnings),
        }


def geometry_volume(info: dict[str, Any]) -> Volume:
    """A Volume carrying only the geometry of `Plan.info()` (voxels are a zero-size broadcast view),
    for geometry_to_proto and geometry_dict without decoding anything."""
    voxels = np.broadcast_to(np.zeros((), dtype=info["dtype"]), tuple(info["shape"]))
    return Volume.from_geometry(
        voxels,
        info["origin"],
        info["spacing"],
        np.asarray(info["direction"]).reshape(3, 3),
        frame_of_reference_uid=info["frame_of_reference_uid"],
        modality=info["modality"],
        units=info["units"],
        warnings=list(info["warnings"]),
    )


# -- frames ----------------------------------------------------------------------------------------


def _floats(value, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _number(value, default: float) -> float:
    try:
        return default if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return default


def _group_item(groups: Dataset | None, sequence: str) -> Dataset | None:
    if groups is None:
        return None
    seq = groups.get(sequence)
    return seq[0] if seq else None


def _functional(ds: Dataset, per_frame: Dataset | None, shared: Dataset | None, sequence: str, keyword: str):
    """An attribute from the per-frame functional group, else the shared one, else the top level."""
    for groups in (per_frame, shared):
        item = _group_item(groups, sequence)
        if item is not None and keyword in item:
            return item.get(keyword)
    return ds.get(keyword)


def _is_localizer(ds: Dataset) -> bool:
    image_type = ds.get("ImageType") or []
    return "LOCALIZER" in [
        str(v).upper() for v in (image_type if isinstance(image_type, list | tuple) else [image_type])
    ]


def frames_of(ds: Dataset, source: int) -> list[Frame]:
    n = int(_number(ds.get("NumberOfFrames"), 1)) or 1
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence")
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    frames = []
    if per_frame_seq is not None or shared is not None:
        for i in range(n):
            per = per_frame_seq[i] if per_frame_seq is not None and i < len(per_frame_seq) else None

            def get(sequence, keyword, per=per):
                return _functional(ds, per, shared, sequence, keyword)

            spacing = _floats(get("PixelMeasuresSequence", "PixelSpacing") or [], 2)
            frames.append(
                Frame(
                    source=source,
                    index=i,
                    multiframe=n > 1,
                    position=_floats(get("PlanePositionSequence", "ImagePositionPatient") or [], 3),
                    orientation=_floats(get("PlaneOrientationSequence", "ImageOrientationPatient") or [], 6),
                    pixel_spacing=None if spacing is None else (spacing[0], spacing[1]),
                    rows=rows,
                    columns=columns,
                    slope=_number(get("PixelValueTransformationSequence", "RescaleSlope"), 1.0),
                    intercept=_number(get("PixelValueTransformationSequence", "RescaleIntercept"), 0.0),
                )
            )
        return frames

    position = _floats(ds.get("ImagePositionPatient") or [], 3)
    orientation = _floats(ds.get("ImageOrientationPatient") or [], 6)
    detector = ds.get("DetectorInformationSequence")  # NM keeps its geometry there
    if (position is None or orientation is None) and detector:
        position = _floats(detector[0].get("ImagePositionPatient") or [], 3)
        orientation = _floats(detector[0].get("ImageOrientationPatient") or [], 6)
    spacing = _floats(ds.get("PixelSpacing") or [], 2)
    offsets: list[float] | None = [0.0]
    if n > 1:
        # One geometry shared by all frames: frames are stacked along the normal.
        grid = ds.get("GridFrameOffsetVector")
        step = _number(ds.get("SpacingBetweenSlices"), 0.0) or _number(ds.get("SliceThickness"), 0.0)
        if grid is not None and len(grid) == n:
            offsets = [float(v) for v in grid]
        elif step > 0:
            offsets = [k * step for k in range(n)]
        else:
            offsets = None
    for i in range(n):
        frame_position = None
        if position is not None and orientation is not None and offsets is not None:
            frame_position = position + offsets[i] * np.cross(orientation[:3], orientation[3:])
        frames.append(
            Frame(
                source=source,
                index=i,
                multiframe=n > 1,
                position=frame_position,
                orientation=orientation,
                pixel_spacing=None if spacing is None else (spacing[0], spacing[1]),
                rows=rows,
                columns=columns,
                # RT Dose scales its stored values by DoseGridScaling instead of a rescale.
                slope=_number(ds.get("RescaleSlope"), _number(ds.get("DoseGridScaling"), 1.0)),
                intercept=_number(ds.get("RescaleIntercept"), 0.0),
            )
        )
    return frames


# -- plan ------------------------------------------------------------------------------------------


def _not_volumetric_kind(datasets: list[Dataset]) -> str:
    classes = {sop_class(ds) for ds in datasets}
    for cls, name in DOCUMENT_SOP_CLASSES.items():
        if cls in classes:
            return f"{name} document, not an image"
    for ds in datasets:
        samples = int(_number(ds.get("SamplesPerPixel"), 1))
        if samples != 1:
            return f"colour images ({ds.get('PhotometricInterpretation', 'RGB')}) are not volumetric"
    modality = str(datasets[0].get("Modality", "")).upper()
    if modality in ("US", "IVUS") or any("Ultrasound" in UID(c).name for c in classes if c):
        return "ultrasound images have no patient-space slice geometry"
    return ""


def plan_series(datasets: list[Dataset]) -> Plan:
    """Decide the series' geometry from headers. Raises NotAVolume with the reason."""
    if not datasets:
        raise NotAVolume("the series has no instances")
    kind = _not_volumetric_kind(datasets)
    if kind:
        raise NotAVolume(kind)
    warnings: list[str] = []

    frames: list[Frame] = []
    localizers = 0
    for source, ds in enumerate(datasets):
        if _is_localizer(ds):
            localizers += 1
            continue
        frames.extend(frames_of(ds, source))
    if localizers:
        if not frames:
            raise NotAVolume("localizer (scout) images only")
        warnings.append(f"{localizers} localizer image(s) left out")

    located = [f for f in frames if f.position is not None and f.orientation is not None and f.pixel_spacing]
    if not located:
        what = "single image" if len(frames) == 1 else f"{len(frames)} frames"
        raise NotAVolume(
            f"{what} without patient geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing): "
            "a secondary capture, projection or cine image"
        )
    if len(located) < len(frames):
        warnings.append(f"{len(frames) - len(located)} frame(s) without position/orientation left out")
    if len(located) == 1:
        raise NotAVolume("single image: one frame is not a volume")

    groups = Counter(f.group_key() for f in located)
    key, count = groups.most_common(1)[0]
    if len(groups) > 1:
        others = ", ".join(f"{n} frame(s) of {k[1]}x{k[2]}" for k, n in groups.most_common()[1:])
        warnings.append(
            f"series mixes {len(groups)} orientations/sizes: kept the largest group of {count} frames, "
            f"left out {others}"
        )
    frames = [f for f in located if f.group_key() == key]
    if len(frames) == 1:
        raise NotAVolume("single image: no two frames share orientation and size")

    orientation = frames[0].orientation
    row_cos, col_cos = orientation[:3], orientation[3:]
    if abs(np.linalg.norm(row_cos) - 1) > 0.01 or abs(np.linalg.norm(col_cos) - 1) > 0.01:
        raise NotAVolume(f"ImageOrientationPatient {list(orientation)} is not made of unit vectors")
    if abs(float(np.dot(row_cos, col_cos))) > 0.01:
        raise NotAVolume(f"ImageOrientationPatient {list(orientation)} is not orthogonal")
    row_cos, col_cos = row_cos / np.linalg.norm(row_cos), col_cos / np.linalg.norm(col_cos)
    normal = np.cross(row_cos, col_cos)
    normal /= np.linalg.norm(normal)

    frames.sort(key=lambda f: float(np.dot(f.position, normal)))
    positions = np.array([f.position for f in frames])
    heights = positions @ normal
    steps = np.diff(heights)
    step_floor = SPACING_SLACK_MM + 1e-3 * float(
        np.median(np.abs(np.diff(positions, axis=0)).sum(axis=1)) or 0
    )
    if np.any(steps <= step_floor):
        shared = int(np.sum(steps <= step_floor)) + 1
        raise NotAVolume(
            f"{shared} frames share slice positions (multi-phase, multi-echo or repeated acquisition): "
            "not a single volume"
        )

    span = positions[-1] - positions[0]
    n = len(frames)
    mean_step = span / (n - 1)
    slice_spacing = float(np.linalg.norm(mean_step))
    deviation = np.linalg.norm(np.diff(positions, axis=0) - mean_step, axis=1)
    tolerance = SPACING_TOLERANCE * slice_spacing + SPACING_SLACK_MM
    if np.any(deviation > tolerance):
        raise NotAVolume(_irregular_reason(steps, heights))
    if deviation.max() > SPACING_SLACK_MM:
        warnings.append(
            f"slice spacing varies by up to {deviation.max():.4f} mm around {slice_spacing:.4f} mm "
            "(within tolerance)"
        )

    slice_axis = span / np.linalg.norm(span)
    tilt = float(np.degrees(np.arccos(np.clip(np.dot(slice_axis, normal), -1.0, 1.0))))
    if tilt > 0.05:
        warnings.append(
            f"slice axis is {tilt:.2f} degrees off the image normal (gantry tilt): the affine is sheared"
        )
    first = datasets[frames[0].source]
    frame_of_reference = {str(datasets[f.source].get("FrameOfReferenceUID", "")) for f in frames}
    if len(frame_of_reference) > 1:
        warnings.append(f"frames carry {len(frame_of_reference)} different FrameOfReferenceUIDs")

    plan = Plan(
        frames=frames,
        origin=positions[0].copy(),
        spacing=np.array([slice_spacing, frames[0].pixel_spacing[0], frames[0].pixel_spacing[1]]),
        direction=np.array([slice_axis, col_cos, row_cos]),
        units="",
        dtype="float32",
        modality=str(first.get("Modality", "")),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
        warnings=warnings,
    )
    _choose_units(plan, datasets)
    return plan


def _irregular_reason(steps: np.ndarray, heights: np.ndarray) -> str:
    median = float(np.median(steps))
    gaps = [i for i, s in enumerate(steps) if s > 1.5 * median]
    text = (
        f"irregular slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm "
        f"(median {median:.3f} mm)"
    )
    if gaps:
        where = ", ".join(f"{heights[i]:.2f}..{heights[i + 1]:.2f} mm" for i in gaps[:5])
        text += f"; {len(gaps)} gap(s) at {where}"
    return text + "; not resampled onto a uniform grid"


def _float_pixels(ds: Dataset) -> bool:
    return "PixelData" not in ds and ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds)


def _choose_units(plan: Plan, datasets: list[Dataset]) -> None:
    """Units, output dtype and value scale. `datasets` is the full list `Frame.source` indexes."""
    first = datasets[plan.frames[0].source]
    modality = plan.modality.upper()
    if modality in ("PT", "PET"):
        units = str(first.get("Units", "")).upper()
        factor, why = suvbw_factor([datasets[i] for i in sorted({f.source for f in plan.frames})])
        if factor is not None:
            plan.units, plan.scale = "SUVbw", factor
        else:
            plan.units = units
            plan.warnings.append(f"values are {units or 'raw'}, not SUVbw: {why}")
        plan.dtype = "float32"
        return
    if modality == "CT":
        plan.units = "HU"
    elif modality == "RTDOSE":
        plan.units = str(first.get("DoseUnits", "")).upper()
    else:
        units = str(first.get("RescaleType", "") or "").strip().upper()
        plan.units = "" if units == "US" else units  # US = unspecified
    # int16 when every rescale is integral; load_volume falls back to float32 when the decoded
    # values do not fit (the header's BitsStored range often does not, the actual values usually do).
    integral = all(
        float(f.slope).is_integer()
        and float(f.intercept).is_integer()
        and not _float_pixels(datasets[f.source])
        for f in plan.frames
    )
    plan.dtype = "int16" if integral else "float32"


# -- pixels ----------------------------------------------------------------------------------------


def load_volume(plan: Plan, open_dataset: Callable[[int], Dataset], series_uid: str = "") -> Volume:
    """Decode the planned frames into a Volume. `open_dataset(source)` returns the full data set
    (with pixels) of `Frame.source`; each is opened and decoded once."""
    voxels = np.empty(plan.shape, dtype=plan.dtype)
    by_source: dict[int, list[tuple[int, Frame]]] = {}
    for k, frame in enumerate(plan.frames):
        by_source.setdefault(frame.source, []).append((k, frame))
    for source, items in by_source.items():
        ds = open_dataset(source)
        try:
            pixels = ds.pixel_array
        except Exception as exc:  # decoder errors come in many types
            raise NotAVolume(
                f"cannot decode {ds.get('SOPInstanceUID', '')}: {type(exc).__name__}: {exc}"
            ) from None
        if items[0][1].multiframe and pixels.ndim == 2:
            pixels = pixels[None]
        for k, frame in items:
            image = pixels[frame.index] if frame.multiframe else pixels
            if image.shape != (frame.rows, frame.columns):
                raise NotAVolume(f"frame of {image.shape} in a {frame.rows}x{frame.columns} series")
            values = _rescaled(image, frame, plan, voxels.dtype == np.int16)
            if (
                voxels.dtype == np.int16
                and values.size
                and (values.min() < INT16.min or values.max() > INT16.max)
            ):
                voxels = voxels.astype(np.float32)  # exact: every int16 value is a float32 too
            voxels[k] = values
    return Volume.from_geometry(
        voxels,
        plan.origin,
        plan.spacing,
        plan.direction,
        frame_of_reference_uid=plan.frame_of_reference_uid,
        modality=plan.modality,
        units=plan.units,
        series_uid=series_uid,
        warnings=list(plan.warnings),
    )


def _rescaled(image: np.ndarray, frame: Frame, plan: Plan, integer: bool) -> np.ndarray:
    if integer:
        return image.astype(np.int32) * int(frame.slope) + int(frame.intercept)
    values = image.astype(np.float64) * frame.slope + frame.intercept
    return values * plan.scale if plan.scale != 1.0 else values


def assemble(datasets: list[Dataset], series_uid: str = "") -> Volume:
    """Plan and load in one go, for data sets already in memory with their pixels."""
    return load_volume(plan_series(datasets), lambda i: datasets[i], series_uid)
