"""The generic writer: valid files whose tags give back the Volume's voxels and affine."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from demo_oracle import assert_same_voxels, dicom_files, read_multiframe, read_series
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    RLELossless,
)

from voxcast.demo import rotation_matrix, write_multiframe, write_volume_series
from voxcast.demo.dicomwrite import quantize
from voxcast.volume import Volume

AXIAL = np.array([[0, 0, 1.0], [0, 1.0, 0], [1.0, 0, 0]])


def hu_volume(shape=(7, 9, 11), direction=AXIAL, origin=(-40.0, 12.5, 300.0), spacing=(2.5, 0.7, 0.8)):
    rng = np.random.default_rng(42)
    voxels = rng.integers(-1024, 3000, size=shape).astype(np.int16)
    return Volume.from_geometry(
        voxels, origin, spacing, direction, frame_of_reference_uid="1.2.826.0.1.3680043.8.498.1"
    )


def oblique_volume(**kw):
    return hu_volume(direction=rotation_matrix((1.0, -2.0, 0.5), 33.0) @ AXIAL, **kw)


def test_axial_ct_round_trips_voxels_and_geometry(tmp_path):
    volume = hu_volume()
    paths = write_volume_series(volume, tmp_path, modality="CT")
    assert len(paths) == volume.shape[0] and sorted(paths) == dicom_files(tmp_path)
    first = pydicom.dcmread(paths[0])
    assert first.SOPClassUID == CTImageStorage and first.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert first.FrameOfReferenceUID == volume.frame_of_reference_uid
    assert [float(v) for v in first.ImagePositionPatient] == pytest.approx(volume.index_to_world((0, 0, 0)))
    assert [float(v) for v in first.ImageOrientationPatient] == pytest.approx([1, 0, 0, 0, 1, 0])
    assert [float(v) for v in first.PixelSpacing] == pytest.approx([0.7, 0.8])
    assert float(first.SliceThickness) == pytest.approx(2.5)
    assert (first.Rows, first.Columns) == (9, 11)
    assert first.pixel_array.dtype == np.int16 and first.PixelRepresentation == 1
    read = read_series(paths)
    assert np.allclose(read.affine, volume.affine, atol=1e-9)
    assert_same_voxels(volume, read)


def test_fixed_rescale_stores_unsigned_values(tmp_path):
    volume = hu_volume()
    paths = write_volume_series(volume, tmp_path, rescale=(1.0, -1024.0))
    ds = pydicom.dcmread(paths[0])
    assert ds.PixelRepresentation == 0 and ds.pixel_array.dtype == np.uint16
    assert float(ds.RescaleIntercept) == -1024.0 and float(ds.RescaleSlope) == 1.0
    assert_same_voxels(volume, read_series(paths))


@pytest.mark.parametrize(
    "file_order, instance_numbers",
    [("sorted", "ascending"), ("reversed", "descending"), ("shuffled", "random")],
)
def test_oblique_volume_in_any_file_order(tmp_path, file_order, instance_numbers):
    volume = oblique_volume(shape=(12, 8, 10))
    paths = write_volume_series(
        volume, tmp_path, file_order=file_order, instance_numbers=instance_numbers, seed=3
    )
    datasets = [pydicom.dcmread(p) for p in paths]
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    assert iop[:3] == pytest.approx(volume.direction[2]) and iop[3:] == pytest.approx(volume.direction[1])
    normal = np.cross(iop[:3], iop[3:])
    along = [np.dot([float(v) for v in ds.ImagePositionPatient], normal) for ds in datasets]
    numbers = [int(ds.InstanceNumber) for ds in datasets]
    if file_order == "sorted":
        assert along == sorted(along) and numbers == sorted(numbers)
    elif file_order == "reversed":
        assert along == sorted(along, reverse=True) and numbers == sorted(numbers)
    else:
        assert along != sorted(along) and along != sorted(along, reverse=True)
        # Neither names nor numbers tell the order.
        by_name = [along[paths.index(p)] for p in sorted(paths)]
        assert by_name != sorted(by_name) and by_name != sorted(by_name, reverse=True)
        by_number = [a for _, a in sorted(zip(numbers, along, strict=True))]
        assert by_number != sorted(by_number) and by_number != sorted(by_number, reverse=True)
        assert not any(p.name.startswith("IM") for p in paths)
    assert sorted(numbers) == list(range(1, 13))
    read = read_series(paths)
    assert np.allclose(read.affine, volume.affine, atol=1e-6)
    assert_same_voxels(volume, read)


def test_slice_axis_against_the_normal_reads_back_flipped(tmp_path):
    # Slice index grows opposite to row x column: a reader sorting along the normal flips the stack.
    direction = AXIAL.copy()
    direction[0] = -direction[0]
    volume = hu_volume(direction=direction)
    read = read_series(write_volume_series(volume, tmp_path, file_order="shuffled"))
    assert np.allclose(read.direction[0], -volume.direction[0])
    assert_same_voxels(volume, read)


def test_same_inputs_give_identical_files(tmp_path):
    volume = oblique_volume()
    kw = dict(
        study_uid="1.2.3.4", series_uid="1.2.3.5", file_order="shuffled", instance_numbers="random", seed=9
    )
    a = write_volume_series(volume, tmp_path / "a", **kw)
    b = write_volume_series(volume, tmp_path / "b", **kw)
    assert [p.name for p in a] == [p.name for p in b]
    assert all(pa.read_bytes() == pb.read_bytes() for pa, pb in zip(a, b, strict=True))
    c = write_volume_series(volume, tmp_path / "c", **(kw | {"seed": 10}))
    assert [p.name for p in c] != [p.name for p in a]


def test_uids_default_to_new_ones_and_instances_follow_the_series(tmp_path):
    volume = hu_volume(shape=(3, 4, 5))
    a = [pydicom.dcmread(p) for p in write_volume_series(volume, tmp_path / "a")]
    b = [pydicom.dcmread(p) for p in write_volume_series(volume, tmp_path / "b")]
    assert a[0].SeriesInstanceUID != b[0].SeriesInstanceUID and a[0].StudyInstanceUID != b[0].StudyInstanceUID
    assert len({ds.SOPInstanceUID for ds in a}) == 3
    assert a[0].FrameOfReferenceUID == b[0].FrameOfReferenceUID == volume.frame_of_reference_uid
    again = [
        pydicom.dcmread(p)
        for p in write_volume_series(volume, tmp_path / "c", series_uid=a[0].SeriesInstanceUID)
    ]
    assert [ds.SOPInstanceUID for ds in again] == [ds.SOPInstanceUID for ds in a]


def test_pet_float_values_get_per_slice_slopes(tmp_path):
    rng = np.random.default_rng(1)
    voxels = rng.gamma(2.0, 3000.0, size=(5, 16, 16)).astype(np.float32)
    voxels[2] *= 10
    volume = Volume.from_geometry(voxels, (0, 0, 0), (4, 4, 4), AXIAL)
    paths = write_volume_series(volume, tmp_path, modality="PT")
    datasets = [pydicom.dcmread(p) for p in paths]
    assert datasets[0].SOPClassUID == PositronEmissionTomographyImageStorage
    slopes = [float(ds.RescaleSlope) for ds in datasets]
    assert len(set(slopes)) == 5 and slopes[2] > 5 * slopes[1]
    assert all(int(np.abs(ds.pixel_array).max()) == 32767 for ds in datasets)
    read = read_series(paths)
    for k in range(5):
        np.testing.assert_allclose(read.voxels[k], voxels[k], atol=slopes[k] * 0.5 + 1e-6, rtol=0)


def test_mr_and_extra_hook(tmp_path):
    volume = hu_volume(shape=(2, 4, 4))
    seen = []

    def extra(ds, k):
        seen.append(k)
        ds.MagneticFieldStrength = "3"
        ds.EchoTime = str(10 + k)

    paths = write_volume_series(volume, tmp_path, modality="MR", extra=extra, file_order="reversed")
    assert seen == [1, 0]
    datasets = [pydicom.dcmread(p) for p in paths]
    assert datasets[0].SOPClassUID == MRImageStorage and datasets[0].Modality == "MR"
    assert [ds.EchoTime for ds in datasets] == [11, 10]


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, RLELossless, JPEG2000Lossless])
def test_other_transfer_syntaxes_are_lossless(tmp_path, syntax):
    volume = hu_volume(shape=(3, 64, 64))
    paths = write_volume_series(volume, tmp_path, transfer_syntax=syntax)
    ds = pydicom.dcmread(paths[0])
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert_same_voxels(volume, read_series(paths))


@pytest.mark.parametrize("frame_order", ["sorted", "shuffled"])
def test_multiframe_enhanced_ct(tmp_path, frame_order):
    volume = oblique_volume(shape=(9, 6, 7))
    path = write_multiframe(volume, tmp_path / "mf.dcm", frame_order=frame_order, seed=2)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == EnhancedCTImageStorage and int(ds.NumberOfFrames) == 9
    stack = [
        int(f.FrameContentSequence[0].InStackPositionNumber) for f in ds.PerFrameFunctionalGroupsSequence
    ]
    assert sorted(stack) == list(range(1, 10))
    assert (stack == sorted(stack)) == (frame_order == "sorted")
    read = read_multiframe(path)
    assert np.allclose(read.affine, volume.affine, atol=1e-6)
    assert_same_voxels(volume, read)


def test_multiframe_compressed(tmp_path):
    volume = hu_volume(shape=(4, 32, 32))
    path = write_multiframe(volume, tmp_path / "mf.dcm", transfer_syntax=RLELossless, rescale=(1.0, -1024.0))
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == RLELossless
    assert_same_voxels(volume, read_multiframe(path))


def test_multiframe_float_values_share_one_slope(tmp_path):
    voxels = np.linspace(0, 5000, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    volume = Volume.from_geometry(voxels, (0, 0, 0), (2, 1, 1), AXIAL)
    read = read_multiframe(write_multiframe(volume, tmp_path / "mf.dcm"))
    assert_same_voxels(volume, read, atol=5000 / 32767)


def test_quantize_chooses_the_stored_type():
    assert quantize(np.zeros((1, 2, 2), np.int16)).pixels(0).dtype == np.int16
    assert quantize(np.full((1, 2, 2), 40000.0), (1.0, 0.0)).pixels(0).dtype == np.uint16
    assert quantize(np.full((1, 2, 2), 100.0), (1.0, -1024.0)).pixels(0).tolist() == [
        [1124, 1124],
        [1124, 1124],
    ]
    assert quantize(np.full((1, 2, 2), 0.5)).slopes[0] == pytest.approx(0.5 / 32767)
    assert quantize(np.zeros((2, 2, 2), np.float32) + 0.0).slopes.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"file_order": "random"}, ValueError, "known: sorted, reversed, shuffled"),
        ({"instance_numbers": "up"}, ValueError, "known: ascending"),
        ({"modality": "US"}, ValueError, "known: CT, PT, MR"),
        ({"rescale": (1.0, 40000.0)}, ValueError, "fits neither int16 nor uint16"),
        ({"rescale": (0.0, 0.0)}, ValueError, "slope must be positive"),
        ({"rescale": "per-frame"}, ValueError, "rescale must be"),
        ({"transfer_syntax": CTImageStorage}, ValueError, "not a transfer syntax"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        write_volume_series(hu_volume(shape=(2, 3, 3)), tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_bad_volumes_are_refused(tmp_path):
    with pytest.raises(TypeError, match="Volume"):
        write_volume_series(np.zeros((2, 2, 2)), tmp_path)
    sheared = Volume(
        np.zeros((2, 2, 2), np.int16), np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    )
    with pytest.raises(ValueError, match="sheared"):
        write_volume_series(sheared, tmp_path)
    nan = Volume.from_geometry(np.full((2, 2, 2), np.nan), (0, 0, 0), (1, 1, 1), AXIAL)
    with pytest.raises(ValueError, match="NaN"):
        write_volume_series(nan, tmp_path)
    with pytest.raises(ValueError, match="one shared rescale"):
        write_multiframe(hu_volume(shape=(2, 3, 3)), tmp_path / "mf.dcm", rescale="per-slice")
