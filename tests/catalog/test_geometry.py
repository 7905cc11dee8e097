"""Volume assembly: slice order from positions (never names or InstanceNumbers), the affine,
spacing checks, oblique and tilted stacks, multi-frame objects and compressed pixel data."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from voxcast.catalog.errors import NotAVolume
from voxcast.catalog.ingest import STATUS_NAMES

from voxcast.demo.dicomwrite import rotation_matrix, write_multiframe, write_volume_series
from voxcast.volume import Volume

AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # slice axis = row x column cosines


def make_volume(direction=AXIAL, shape=(9, 12, 14), spacing=(2.5, 0.8, 0.7), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    voxels = rng.integers(-1000, 2000, size=shape).astype(np.int16)
    return Volume.from_geometry(
        voxels, origin=(-30.0, 12.5, 40.0), spacing=spacing, direction=direction,
        frame_of_reference_uid=pydicom.uid.generate_uid(), modality="CT", units="HU",
    )  # fmt: skip


def ingest_series(catalog, folder) -> str:
    results = list(catalog.ingest([folder]))
    assert all(STATUS_NAMES[r.status] == "indexed" for r in results), [r.reason for r in results]
    (series_uid,) = {r.series_uid for r in results}
    return series_uid


def assert_same_volume(got: Volume, want: Volume, atol=1e-3):
    assert got.shape == want.shape
    np.testing.assert_allclose(got.affine, want.affine, atol=atol)
    np.testing.assert_array_equal(got.voxels, want.voxels)


@pytest.mark.parametrize(
    "file_order, instance_numbers",
    [("sorted", "ascending"), ("shuffled", "random"), ("reversed", "ascending"), ("sorted", "descending")],
)
def test_slice_order_comes_from_positions(catalog, src, file_order, instance_numbers):
    source = make_volume()
    write_volume_series(source, src, modality="CT", file_order=file_order,
                        instance_numbers=instance_numbers, seed=7, rescale=(1.0, -1024.0))  # fmt: skip
    series_uid = ingest_series(catalog, src)
    volume = catalog.fetch_volume(series_uid)
    assert_same_volume(volume, source)
    assert volume.voxels.dtype == np.int16 and volume.units == "HU" and not volume.warnings
    geometry = catalog.get_series(series_uid).geometry
    assert list(geometry.shape) == list(source.shape)
    np.testing.assert_allclose(geometry.spacing_mm, source.spacing, atol=1e-4)
    assert geometry.dtype == "int16"


def test_oblique_orientation(catalog, src):
    direction = AXIAL @ rotation_matrix((1.0, 2.0, 3.0), 25.0).T  # rotate every index axis
    source = make_volume(direction)
    write_volume_series(source, src, modality="CT", file_order="shuffled", instance_numbers="random",
                        seed=3, rescale=(1.0, -1024.0))  # fmt: skip
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    assert_same_volume(volume, source)
    np.testing.assert_allclose(volume.direction, direction, atol=1e-5)


def test_slice_axis_against_the_normal_keeps_world_positions(catalog, src):
    """Slices stacked against cross(row, column): sorted along the normal, the volume comes out in the
    opposite index order, and the affine still puts every voxel where it was."""
    direction = AXIAL.copy()
    direction[0] *= -1
    source = make_volume(direction)
    write_volume_series(source, src, modality="CT", file_order="shuffled", seed=1, rescale=(1.0, -1024.0))
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    np.testing.assert_array_equal(volume.voxels, source.voxels[::-1])
    n = source.shape[0] - 1
    for k, i, j in [(0, 0, 0), (n, 11, 13), (3, 5, 7)]:
        np.testing.assert_allclose(
            volume.index_to_world((k, i, j)), source.index_to_world((n - k, i, j)), atol=1e-3
        )


def test_gap_is_not_silently_stretched(catalog, src):
    paths = write_volume_series(make_volume(), src, modality="CT", rescale=(1.0, -1024.0))
    paths[4].unlink()
    series_uid = ingest_series(catalog, src)
    series = catalog.get_series(series_uid)
    assert not series.is_volume
    assert "irregular slice spacing" in series.not_volume_reason and "1 gap(s)" in series.not_volume_reason
    with pytest.raises(NotAVolume, match="irregular slice spacing"):
        catalog.fetch_volume(series_uid)


def test_small_jitter_is_a_warning(catalog, src):
    def jitter(ds, k):
        if k == 4:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [x, y, z + 0.01]

    source = make_volume()
    write_volume_series(source, src, modality="CT", rescale=(1.0, -1024.0), extra=jitter)
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    assert_same_volume(volume, source, atol=2e-3)
    assert any("slice spacing varies" in w for w in volume.warnings)


def test_gantry_tilt_gives_a_sheared_affine(catalog, src):
    shift = 0.3  # mm along the column axis (y) per slice

    def tilt(ds, k):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + shift * k, z]

    source = make_volume()
    write_volume_series(source, src, modality="CT", rescale=(1.0, -1024.0), extra=tilt)
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    np.testing.assert_array_equal(volume.voxels, source.voxels)
    for k in (0, 4, 8):
        want = source.index_to_world((k, 0, 0)) + [0.0, shift * k, 0.0]
        np.testing.assert_allclose(volume.index_to_world((k, 0, 0)), want, atol=1e-3)
    assert any("gantry tilt" in w for w in volume.warnings)


def test_mixed_sizes_keep_the_largest_group_and_say_so(catalog, src):
    source = make_volume()
    write_volume_series(source, src / "main", modality="CT", rescale=(1.0, -1024.0),
                        series_uid="1.2.3.4.5.6.7", study_uid="1.2.3.4.5.6")  # fmt: skip
    extra = make_volume(shape=(2, 6, 6), seed=5)
    write_volume_series(extra, src / "extra", modality="CT", rescale=(1.0, -1024.0),
                        series_uid="1.2.3.4.5.6.7", study_uid="1.2.3.4.5.6")  # fmt: skip
    for i, p in enumerate(sorted((src / "extra").iterdir())):  # distinct SOP Instance UIDs
        ds = pydicom.dcmread(p)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.4.5.6.7.99.{i}"
        ds.save_as(p)
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    assert_same_volume(volume, source)
    assert any("mixes 2 orientations/sizes" in w and "2 frame(s) of 6x6" in w for w in volume.warnings)


def test_duplicate_positions_are_not_a_volume(catalog, src):
    source = make_volume(shape=(3, 4, 4))
    write_volume_series(source, src / "a", modality="CT", series_uid="1.2.3.9", study_uid="1.2.3.8")
    write_volume_series(source, src / "b", modality="CT", series_uid="1.2.3.9", study_uid="1.2.3.8")
    for i, p in enumerate(sorted((src / "b").iterdir())):
        ds = pydicom.dcmread(p)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.9.77.{i}"
        ds.save_as(p)
    series = catalog.get_series(ingest_series(catalog, src))
    assert not series.is_volume and "share slice positions" in series.not_volume_reason


def test_enhanced_multiframe_with_scrambled_frames(catalog, src):
    source = make_volume(AXIAL @ rotation_matrix((0.0, 1.0, 0.0), 15.0).T)
    write_multiframe(source, src / "enhanced.dcm", frame_order="shuffled", seed=2, rescale=(1.0, -1024.0))
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    assert_same_volume(volume, source)
    assert volume.units == "HU"


def test_enhanced_multiframe_rle(catalog, src):
    source = make_volume(shape=(5, 8, 10))
    write_multiframe(source, src / "enhanced_rle.dcm", rescale=(1.0, -1024.0),
                     transfer_syntax=pydicom.uid.RLELossless)  # fmt: skip
    assert_same_volume(catalog.fetch_volume(ingest_series(catalog, src)), source)


def test_multiframe_with_shared_geometry(catalog, src):
    """RT Dose: one ImagePositionPatient, frames stacked by GridFrameOffsetVector."""
    path = get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    (result,) = catalog.ingest([path])
    volume = catalog.fetch_volume(result.series_uid)
    assert volume.shape == (int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    np.testing.assert_allclose(volume.spacing[0], offsets[1] - offsets[0])
    np.testing.assert_allclose(volume.origin, [float(v) for v in ds.ImagePositionPatient])
    expected = ds.pixel_array * float(ds.DoseGridScaling)
    np.testing.assert_allclose(volume.voxels, expected, rtol=1e-6)
    assert volume.units == ds.DoseUnits and volume.voxels.dtype == np.float32


def _stack_copies(source_path, folder, n=3, reference=None):
    """n copies of a single-frame file as the slices of one series (only position and UIDs change)."""
    folder.mkdir()
    series_uid = f"1.2.826.0.1.3680043.8.498.{np.random.default_rng().integers(10**12)}"
    for k in range(n):
        ds = pydicom.dcmread(source_path)
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series_uid, "1.2.826.0.1.3680043.8.498.1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{series_uid}.{k}"
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.InstanceNumber = n - k
        ds.Modality, ds.SOPClassUID = "MR", pydicom.uid.MRImageStorage  # some sources are US or SC
        ds.save_as(folder / f"{k}.dcm")
    return series_uid


@pytest.mark.parametrize(
    "name, reference",
    [
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("JPEG2000.dcm", None),
        ("JPEG-LL.dcm", None),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", None),
        ("JPGExtended.dcm", None),
    ],
)
def test_compressed_transfer_syntaxes_decode_at_assembly(catalog, src, name, reference):
    path = get_testdata_file(name)
    series_uid = _stack_copies(path, src / "series")
    (uid,) = {r.series_uid for r in catalog.ingest([src / "series"])}
    volume = catalog.fetch_volume(uid)
    ds = pydicom.dcmread(get_testdata_file(reference or name))
    want = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    assert uid == series_uid and volume.shape == (3, *want.shape)
    for k in range(3):
        np.testing.assert_array_equal(volume.voxels[k], want)


def test_undecodable_pixel_data_is_reported_at_assembly(catalog, src):
    """JPEG-lossy.dcm (12-bit JPEG extended) needs GDCM; the pylibjpeg plugins cannot decode it."""
    _stack_copies(get_testdata_file("JPEG-lossy.dcm"), src / "series")
    (uid,) = {r.series_uid for r in catalog.ingest([src / "series"])}
    with pytest.raises(NotAVolume, match="cannot decode"):
        catalog.fetch_volume(uid)


def test_jpeg_baseline_series(catalog, src):
    """8-bit JPEG baseline (lossy): encoded here with Pillow, decoded by the pylibjpeg plugins."""
    import io

    from PIL import Image

    source = np.clip(make_volume(shape=(4, 32, 32)).voxels // 16 + 64, 0, 255).astype(np.uint8)
    source = np.ascontiguousarray(np.broadcast_to(np.linspace(0, 250, 32, dtype=np.uint8), (4, 32, 32)))
    paths = write_volume_series(make_volume(shape=(4, 32, 32)), src, modality="CT", rescale=(1.0, -1024.0))
    for p in paths:
        ds = pydicom.dcmread(p)
        k = int(round((float(ds.ImagePositionPatient[2]) - 40.0) / 2.5))
        buffer = io.BytesIO()
        Image.fromarray(source[k]).save(buffer, format="JPEG", quality=95)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = pydicom.encaps.encapsulate([buffer.getvalue()])
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
        ds.save_as(p)
    volume = catalog.fetch_volume(ingest_series(catalog, src))
    assert np.abs(volume.voxels.astype(int) - (source.astype(int) - 1024)).max() <= 4
