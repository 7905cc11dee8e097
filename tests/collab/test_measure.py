"""Measurements from the volume in world coordinates: line lengths and elliptical ROIs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from collabkit import ct_volume
from voxcast.gateway.collab import InvalidCommand, measure_ellipse, measure_line
from voxcast.gateway.collab.measure import MAX_SAMPLES

from voxcast.volume import Volume


def hu_at(point) -> float:
    """The ct_volume value at a world point: 10 HU per mm along LPS x from the origin, minus 100."""
    return 10.0 * (point[0] + 20.0) - 100.0


def test_line_length_is_measured_in_world_millimetres():
    vol = ct_volume()
    start = vol.center
    result = measure_line(vol, start, start + np.array([3.0, 4.0, 12.0]))
    assert result["length_mm"] == pytest.approx(13.0)
    assert result["inside"] is True
    assert measure_line(vol, start, start + [500.0, 0, 0])["inside"] is False


def test_line_rejects_non_finite_points():
    with pytest.raises(InvalidCommand) as err:
        measure_line(ct_volume(), [0, 0, float("nan")], [1, 2, 3])
    assert err.value.field == "start"


def test_ellipse_on_an_oblique_plane_gives_the_centre_value_as_mean():
    vol = ct_volume()
    centre = vol.center
    a = np.array([0.0, math.cos(math.radians(30)), math.sin(math.radians(30))]) * 4.0
    b = np.array([1.0, 0.0, 0.0]) * 3.0
    result = measure_ellipse(vol, centre, a, b)
    # A linear field averages to its value at the centre of a symmetric region.
    assert result["mean"] == pytest.approx(hu_at(centre), abs=1e-3)
    step = result["sample_step_mm"]
    assert hu_at(centre) + 10 * (3.0 - step) <= result["max"] <= hu_at(centre) + 30.0 + 1e-6
    assert result["min"] == pytest.approx(2 * hu_at(centre) - result["max"], abs=1e-3)
    assert result["area_mm2"] == pytest.approx(math.pi * 12.0)
    assert result["units"] == "HU"
    assert result["outside_fraction"] == 0.0


def test_ellipse_reads_a_hot_sphere_like_an_suv_max():
    shape = (30, 30, 30)
    k, i, j = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    spacing = 2.0
    r = np.sqrt((k - 15) ** 2 + (i - 15) ** 2 + (j - 15) ** 2) * spacing
    voxels = np.where(r <= 8.0, 6.5, 1.0).astype(np.float32)
    vol = Volume.from_geometry(voxels, (0, 0, 0), (spacing,) * 3, np.eye(3), units="SUVbw")
    centre = vol.index_to_world([15, 15, 15])
    inner = measure_ellipse(vol, centre, [0, 0, 5.0], [0, 5.0, 0])
    assert inner["mean"] == pytest.approx(6.5)
    assert inner["max"] == pytest.approx(6.5)
    wide = measure_ellipse(vol, centre, [0, 0, 20.0], [0, 20.0, 0])
    assert wide["max"] == pytest.approx(6.5)
    assert 1.0 < wide["mean"] < 6.5
    assert wide["units"] == "SUVbw"


def test_ellipse_partly_outside_counts_only_inside_samples():
    vol = ct_volume()
    corner = vol.index_to_world([20, 0, 0])
    result = measure_ellipse(vol, corner, [0, 5.0, 0], [5.0, 0, 0])
    assert 0.3 < result["outside_fraction"] < 0.9


@pytest.mark.parametrize(
    ("centre", "a", "b", "field"),
    [
        ("centre", [1, 0, 0], [1, 1, 0], "axis_b"),  # not perpendicular
        ("centre", [0, 0, 0], [0, 1, 0], "axis_a"),  # degenerate
        ([900, 900, 900], [1, 0, 0], [0, 1, 0], "center"),  # nowhere near the volume
        ([0, float("inf"), 0], [1, 0, 0], [0, 1, 0], "center"),
    ],
)
def test_bad_ellipses_name_the_field(centre, a, b, field):
    vol = ct_volume()
    with pytest.raises(InvalidCommand) as err:
        measure_ellipse(vol, vol.center if centre == "centre" else centre, a, b)
    assert err.value.field == field


def test_a_huge_ellipse_is_sampled_more_coarsely_not_endlessly():
    vol = ct_volume()
    result = measure_ellipse(vol, vol.center, [400.0, 0, 0], [0, 0, 400.0])
    assert result["samples"] <= MAX_SAMPLES
    assert result["sample_step_mm"] > vol.spacing.min() / 2
