"""Orientation: a marker in the patient's left-anterior-superior corner lands where the
radiological convention puts it, whatever the order or tilt in which the voxels are stored."""

from __future__ import annotations

import numpy as np
import pytest
from render_volumes import AXIAL_DIRECTION, make_volume, rotation
from voxcast.render.engine import ViewRequest, axial, coronal, oblique, prepare_volume, render, sagittal

# Patient left = +X, anterior = -Y, superior = +Z (LPS).
LEFT_ANTERIOR_SUPERIOR = np.array([1.0, -1.0, 1.0])


def stored(kind: str) -> np.ndarray:
    """Direction rows (slice, row, column) of differently stored volumes."""
    if kind == "axial":
        return AXIAL_DIRECTION
    if kind == "reversed":  # slices run head to feet, rows posterior to anterior
        return AXIAL_DIRECTION * np.array([[-1.0], [-1.0], [1.0]])
    if kind == "sagittal-acquired":  # slices along -X, rows along -Z, columns along +Y
        return np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    if kind == "oblique":  # tilted 25 degrees about an off-axis direction
        return (rotation((1.0, 2.0, 0.5), 25.0) @ AXIAL_DIRECTION.T).T
    raise AssertionError(kind)


def volume_with_marker(kind: str):
    n = 24
    direction = stored(kind)
    spacing = np.array([2.0, 1.5, 1.0])
    # Centre the volume on the world origin.
    origin = -(direction.T @ ((n - 1) / 2.0 * spacing))
    vol = make_volume(np.zeros((n, n, n), np.float32), spacing=spacing, origin=origin, direction=direction)
    marker = LEFT_ANTERIOR_SUPERIOR * 8.0  # mm from the centre, inside every tilt
    idx = np.round(vol.world_to_index(marker)).astype(int)
    vol.voxels[tuple(slice(i - 1, i + 2) for i in idx)] = 1000.0
    return vol, vol.index_to_world(idx)


def marker_pixel(image) -> tuple[float, float]:
    """Centroid of the pixels above half the marker's peak."""
    values = np.nan_to_num(image.values, nan=0.0)
    v, u = np.nonzero(values >= values.max() / 2)
    return float(v.mean()), float(u.mean())


def through(plane, point):
    """The plane moved along its normal to contain `point` (which then lies off the image centre)."""
    return plane.scroll(float((point - plane.center) @ plane.normal))


@pytest.mark.parametrize("kind", ["axial", "reversed", "sagittal-acquired", "oblique"])
@pytest.mark.parametrize("mode", ["mip", "mpr"])
def test_marker_shows_where_the_radiological_convention_says(kind, mode):
    vol, marker = volume_with_marker(kind)
    prepared = prepare_volume(vol, "numpy")
    size = (48, 48)
    expected = {
        # (top half?, left half?) of the image
        "axial": (True, False),  # anterior at the top, patient's left on the image right
        "coronal": (True, False),  # superior at the top, patient's left on the right
        "sagittal": (True, True),  # superior at the top, anterior on the left
    }
    for name, make in (("axial", axial), ("coronal", coronal), ("sagittal", sagittal)):
        plane = make(vol, size=size, pixel_mm=1.0)
        if mode == "mpr":
            plane = through(plane, marker)
        image = render(prepared, ViewRequest(mode, plane=plane))
        v, u = marker_pixel(image)
        top, left = expected[name]
        assert (v < size[1] / 2) == top, (name, v, u)
        assert (u < size[0] / 2) == left, (name, v, u)
        # And exactly at the marker's projection.
        want_v, want_u = plane.world_to_pixel(marker)
        # Within a pixel: the 3-voxel block is sampled at 1 mm pixels, its centroid is its centre.
        assert abs(v - want_v) <= 1.0 and abs(u - want_u) <= 1.0, (name, (v, u), (want_v, want_u))


def test_oblique_view_labels_and_marker_agree():
    vol, marker = volume_with_marker("oblique")
    plane = through(oblique((0.3, -0.2, 1.0), vol, size=(48, 48), pixel_mm=1.0), marker)
    image = render(prepare_volume(vol, "numpy"), ViewRequest("mpr", plane=plane))
    v, u = marker_pixel(image)
    want_v, want_u = plane.world_to_pixel(marker)
    assert abs(v - want_v) <= 1.0 and abs(u - want_u) <= 1.0
    assert v < 24 and u >= 24  # anterior-left: top right, as on an axial
    # A mostly axial view: labels keep the axial sides, with the tilt as a second letter.
    assert image.labels.top.startswith("A") and image.labels.left.startswith("R")
