"""Views: where pixels lie in patient space, orientation labels, standard planes, camera moves."""

from __future__ import annotations

import numpy as np
import pytest
from render_volumes import make_volume, random_oblique_volume
from voxcast.render.engine import Camera, Plane, axial, coronal, oblique, orbit, pan, rotate, sagittal, zoom
from voxcast.render.engine.views import direction_label, fit_pixel


def test_image_centre_is_the_plane_centre_and_axes_follow_right_and_down():
    plane = Plane((10, 20, 30), (1, 0, 0), (0, 1, 0), 0.5, 101, 51)
    np.testing.assert_allclose(plane.pixel_to_world(25, 50), (10, 20, 30))
    np.testing.assert_allclose(plane.pixel_to_world(25, 51) - plane.pixel_to_world(25, 50), (0.5, 0, 0))
    np.testing.assert_allclose(plane.pixel_to_world(26, 50) - plane.pixel_to_world(25, 50), (0, 0.5, 0))
    np.testing.assert_allclose(plane.normal, (0, 0, 1))
    assert plane.world_to_pixel((10.5, 19.0, 99.0)) == pytest.approx((23.0, 51.0))


def test_even_sized_image_centre_falls_between_the_middle_pixels():
    plane = Plane((0, 0, 0), (1, 0, 0), (0, 1, 0), 1.0, 4, 2)
    np.testing.assert_allclose(plane.pixel_to_world(0.5, 1.5), (0, 0, 0))


def test_standard_planes_follow_the_radiological_convention():
    volume = make_volume(np.zeros((10, 12, 14), np.int16))
    assert tuple(axial(volume).labels) == ("A", "P", "R", "L")
    assert tuple(coronal(volume).labels) == ("S", "I", "R", "L")
    assert tuple(sagittal(volume).labels) == ("S", "I", "A", "P")
    # Looking from the feet (axial), from the front (coronal) and from the patient's left (sagittal).
    np.testing.assert_allclose(axial(volume).normal, (0, 0, 1))
    np.testing.assert_allclose(coronal(volume).normal, (0, 1, 0))
    np.testing.assert_allclose(sagittal(volume).normal, (-1, 0, 0))


def test_oblique_labels_list_the_strong_components_by_magnitude():
    assert direction_label((0.8, -0.5, 0.1)) == "LA"
    assert direction_label((-0.3, 0.5, 0.8)) == "SPR"
    assert direction_label((0, 0, -1)) == "I"


def test_default_view_goes_through_the_volume_centre_and_shows_all_of_it(rng):
    volume = random_oblique_volume(rng)
    for make in (axial, coronal, sagittal):
        plane = make(volume, size=(200, 120))
        np.testing.assert_allclose(plane.center, volume.center)
        for corner in volume.corners():
            v, u = plane.world_to_pixel(corner)
            assert -0.5 <= u <= plane.width - 0.5 and -0.5 <= v <= plane.height - 0.5
        # ...and not much more: the tighter direction is filled to within a voxel.
        assert plane.pixel_mm == pytest.approx(fit_pixel(volume, plane.right, plane.down, 200, 120))


def test_oblique_plane_reads_like_the_nearest_standard_plane():
    volume = make_volume(np.zeros((10, 12, 14), np.int16))
    np.testing.assert_allclose(oblique((0, 0, -1), volume).right, axial(volume).right)
    np.testing.assert_allclose(oblique((0, 0, -1), volume).down, axial(volume).down)
    tilted = oblique((0.0, 0.3, 1.0), volume, center=(1, 2, 3), size=(64, 64), pixel_mm=1.0)
    np.testing.assert_allclose(tilted.normal, np.array([0, 0.3, 1]) / np.hypot(0.3, 1), atol=1e-12)
    assert tilted.down @ (0, 1, 0) > 0.95
    assert tilted.labels.top == "AS" and tilted.labels.left == "R"


def test_camera_is_the_plane_through_its_target():
    camera = Camera((1, 2, 3), (0, 1, 0), (0, 0, 1), 100.0, 200, 100)
    plane = camera.plane
    np.testing.assert_allclose(plane.center, (1, 2, 3))
    np.testing.assert_allclose(plane.down, (0, 0, -1))
    np.testing.assert_allclose(plane.right, (1, 0, 0))
    assert plane.pixel_mm == pytest.approx(1.0)
    assert tuple(camera.labels) == ("S", "I", "R", "L")
    back = Camera.from_plane(plane)
    np.testing.assert_allclose(back.direction, camera.direction)
    np.testing.assert_allclose(back.up, camera.up)


def test_camera_moves():
    camera = Camera((0, 0, 0), (0, 1, 0), (0, 0, 1), 100.0, 64, 64)
    # Orbiting 90 degrees about the head-foot axis brings the viewer from the front to a side.
    turned = orbit(camera, azimuth_deg=90)
    np.testing.assert_allclose(abs(turned.direction @ (1, 0, 0)), 1.0, atol=1e-12)
    np.testing.assert_allclose(turned.up, (0, 0, 1), atol=1e-12)
    tipped = orbit(camera, elevation_deg=90)
    np.testing.assert_allclose(abs(tipped.direction[2]), 1.0, atol=1e-12)
    assert abs(tipped.up @ tipped.direction) < 1e-12
    rolled = rotate(camera, 90)
    np.testing.assert_allclose(abs(rolled.up[0]), 1.0, atol=1e-12)
    assert zoom(camera, 2).fov_mm == pytest.approx(50)
    np.testing.assert_allclose(pan(camera, right_mm=5, down_mm=2).target, (5, 0, -2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"right": (0, 0, 0)}, "right"),
        ({"down": (1, 0.1, 0)}, "orthogonal"),
        ({"center": (0, np.nan, 0)}, "center"),
        ({"center": (0, 1)}, "center"),
        ({"pixel_mm": 0}, "pixel_mm"),
        ({"pixel_mm": np.inf}, "pixel_mm"),
        ({"width": 0}, "width"),
        ({"height": 4097}, "height"),
        ({"width": 2.5}, "width"),
    ],
)
def test_bad_planes_are_refused_naming_the_field(kwargs, field):
    args = {
        "center": (0, 0, 0),
        "right": (1, 0, 0),
        "down": (0, 1, 0),
        "pixel_mm": 1.0,
        "width": 8,
        "height": 8,
    }
    with pytest.raises(ValueError, match=field):
        Plane(**{**args, **kwargs})


def test_bad_cameras_are_refused():
    with pytest.raises(ValueError, match="up"):
        Camera((0, 0, 0), (0, 0, 1), (0, 0, 2), 10.0, 8, 8)
    with pytest.raises(ValueError, match="direction"):
        Camera((0, 0, 0), (0, 0, 0), (0, 0, 1), 10.0, 8, 8)
    with pytest.raises(ValueError, match="fov_mm"):
        Camera((0, 0, 0), (0, 1, 0), (0, 0, 1), -1.0, 8, 8)


def test_views_compare_and_hash_by_value_and_stay_immutable():
    centre = np.array([1.0, 2.0, 3.0])
    a = Plane(centre, (1, 0, 0), (0, 1, 0), 1.0, 8, 8)
    b = Plane((1, 2, 3), np.array([2.0, 0, 0]), (0, 1, 0), 1.0, 8, 8)
    assert a == b and hash(a) == hash(b) and a != a.scroll(1.0)
    assert len({a, b, a.scroll(1.0)}) == 2
    with pytest.raises(ValueError):
        a.center[0] = 5.0
    centre[0] = 9.0  # the caller's array is copied, not frozen or aliased
    assert a.center[0] == 1.0
    camera = Camera((0, 0, 0), (0, 1, 0), (0, 0, 1), 10.0, 8, 8)
    assert camera == Camera.from_plane(camera.plane) and camera != a
