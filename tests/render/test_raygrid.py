"""Ray grids: where the samples of a view lie along its viewing direction."""

from __future__ import annotations

import numpy as np
import pytest
from render_volumes import make_volume, random_oblique_volume
from voxcast.render.engine import axial, oblique
from voxcast.render.engine.raygrid import MAX_SAMPLES, default_step_mm, voxel_step_mm, world_grid


@pytest.fixture
def volume():
    return make_volume(np.zeros((10, 20, 30), np.int16), spacing=(2.5, 0.8, 0.7), origin=(-10, 5, 40))


def test_thin_plane_is_one_sample_on_the_plane(volume):
    plane = axial(volume, size=(30, 20))
    grid = world_grid(plane, None)
    assert grid.nsamples == 1 and grid.step_mm == 0
    np.testing.assert_allclose(grid.origin, plane.top_left)
    np.testing.assert_allclose(grid.du, plane.pixel_mm * plane.right)
    np.testing.assert_allclose(grid.dv, plane.pixel_mm * plane.down)


def test_slab_samples_are_symmetric_about_the_plane(volume):
    plane = axial(volume, size=(30, 20))
    grid = world_grid(plane, None, slab_mm=5.5, step_mm=2.5)
    assert grid.nsamples == 3
    np.testing.assert_allclose(grid.origin, plane.top_left - 2.5 * plane.normal)
    np.testing.assert_allclose(grid.dk, 2.5 * plane.normal)
    # Exactly two steps fit in a 10 mm slab: 5 samples, the outer ones on its faces.
    assert world_grid(plane, None, slab_mm=10.0, step_mm=2.5).nsamples == 5
    # A slab thinner than one step is the plane itself.
    assert world_grid(plane, None, slab_mm=1.0, step_mm=2.5).nsamples == 1


def test_whole_volume_runs_from_the_nearest_to_the_farthest_corner(rng):
    vol = random_oblique_volume(rng)
    plane = oblique(rng.normal(size=3), vol, size=(8, 8))
    grid = world_grid(plane, vol, step_mm=0.5)
    t = (vol.corners() - plane.center) @ plane.normal
    first = (grid.origin - plane.top_left) @ plane.normal
    last = first + (grid.nsamples - 1) * grid.step_mm
    assert first == pytest.approx(t.min())
    assert t.max() - 0.5 < last <= t.max() + 1e-9


def test_default_steps(volume):
    # Along the slice axis one voxel is one slice; obliquely, at most one voxel on any axis.
    assert voxel_step_mm(volume, (0, 0, 1)) == pytest.approx(2.5)
    assert voxel_step_mm(volume, (1, 0, 0)) == pytest.approx(0.7)
    d = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    assert voxel_step_mm(volume, d) == pytest.approx(0.7 * np.sqrt(2))
    assert default_step_mm(volume, (0, 0, 1), "mip") == pytest.approx(2.5)
    assert default_step_mm(volume, (0, 0, 1), "vr") == pytest.approx(0.35)


def test_bad_slabs_and_steps_are_refused(volume):
    plane = axial(volume, size=(8, 8))
    with pytest.raises(ValueError, match="slab_mm"):
        world_grid(plane, None, slab_mm=-1.0, step_mm=1.0)
    with pytest.raises(ValueError, match="step_mm"):
        world_grid(plane, volume, step_mm=0.0)
    with pytest.raises(ValueError, match=f"at most {MAX_SAMPLES}"):
        world_grid(plane, volume, step_mm=1e-4)
