"""A minimal, independent DICOM reader: the oracle the writer's output is checked against.

It trusts only ImagePositionPatient, ImageOrientationPatient, PixelSpacing and the rescale tags, and
sorts slices by their position along the slice normal (never by InstanceNumber or file name).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from voxcast.volume import Volume


def _geometry(positions: np.ndarray, orientation, pixel_spacing, frame_of_reference_uid: str):
    row_cosine, column_cosine = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row_cosine, column_cosine)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    steps = np.diff(positions, axis=0)
    slice_step = steps.mean(axis=0) if len(steps) else normal
    assert np.allclose(steps, slice_step, atol=1e-3), "slices are not evenly spaced"
    spacing_slice = float(np.linalg.norm(slice_step)) if len(steps) else 1.0
    direction = [slice_step / spacing_slice if len(steps) else normal, column_cosine, row_cosine]
    spacing = [spacing_slice, float(pixel_spacing[0]), float(pixel_spacing[1])]
    return order, positions[0], spacing, direction


def read_series(paths) -> Volume:
    datasets = [pydicom.dcmread(p) for p in paths]
    orientation = [float(v) for v in datasets[0].ImageOrientationPatient]
    for ds in datasets:
        assert np.allclose([float(v) for v in ds.ImageOrientationPatient], orientation)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    order, origin, spacing, direction = _geometry(
        positions, orientation, datasets[0].PixelSpacing, datasets[0].FrameOfReferenceUID
    )
    voxels = np.stack(
        [
            datasets[i].pixel_array.astype(np.float64) * float(datasets[i].RescaleSlope)
            + float(datasets[i].RescaleIntercept)
            for i in order
        ]
    )
    return Volume.from_geometry(
        voxels, origin, spacing, direction,
        frame_of_reference_uid=datasets[0].FrameOfReferenceUID, modality=datasets[0].Modality,
        series_uid=datasets[0].SeriesInstanceUID,
    )  # fmt: skip


def read_multiframe(path) -> Volume:
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    measures = shared.PixelMeasuresSequence[0]
    transform = shared.PixelValueTransformationSequence[0]
    positions = np.array(
        [
            [float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
            for f in ds.PerFrameFunctionalGroupsSequence
        ]
    )
    order, origin, spacing, direction = _geometry(
        positions, orientation, measures.PixelSpacing, ds.FrameOfReferenceUID
    )
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    voxels = frames[order].astype(np.float64) * float(transform.RescaleSlope) + float(
        transform.RescaleIntercept
    )
    return Volume.from_geometry(
        voxels, origin, spacing, direction, frame_of_reference_uid=ds.FrameOfReferenceUID
    )


def assert_same_voxels(expected: Volume, actual: Volume, atol: float = 0.0) -> None:
    """Same world grid (possibly with axes flipped) and the same value at every world position."""
    assert sorted(expected.shape) == sorted(actual.shape)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in expected.shape], indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    mapped = actual.world_to_index(expected.index_to_world(grid))
    rounded = np.rint(mapped)
    assert np.allclose(mapped, rounded, atol=1e-3), "voxel centres do not coincide"
    idx = rounded.astype(int)
    assert np.all(idx >= 0) and np.all(idx < np.asarray(actual.shape))
    got = actual.voxels[idx[:, 0], idx[:, 1], idx[:, 2]]
    np.testing.assert_allclose(got, expected.voxels.reshape(-1), atol=atol, rtol=0)


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file())
