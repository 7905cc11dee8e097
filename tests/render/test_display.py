"""Post-processing: window/level and presets, colormaps, transfer functions and their LUTs."""

from __future__ import annotations

import numpy as np
import pytest
from voxcast.render.engine.colormaps import COLORMAPS, colormap
from voxcast.render.engine.transfer import REFERENCE_MM, TRANSFER_PRESETS, TransferFunction, get_transfer
from voxcast.render.engine.window import (
    NO_DATA,
    WINDOW_PRESETS,
    Window,
    auto_window,
    display_levels,
    to_rgb,
    windowed_rgb,
)


def test_window_presets_are_the_usual_ct_values():
    assert WINDOW_PRESETS["brain"] == (40, 80)
    assert WINDOW_PRESETS["soft-tissue"] == (40, 400)
    assert WINDOW_PRESETS["lung"] == (-600, 1500)
    assert WINDOW_PRESETS["bone"] == (400, 1800)
    assert WINDOW_PRESETS["liver"] == (60, 160)


def test_window_maps_its_range_onto_black_to_white():
    w = Window(40, 400)
    values = np.array([-1000, -160, 40, 240, 3000, np.nan], np.float32)
    assert display_levels(values, w).tolist() == [0, 0, 128, 255, 255, NO_DATA]
    assert display_levels(values, w, invert=True).tolist() == [255, 255, 128, 0, 0, NO_DATA]
    assert display_levels(np.array([-159.9, 239.9], np.float32), w).tolist() == [0, 255]
    rgb = windowed_rgb(values[None], w)[0]
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 3)
    assert rgb[:, 0].tolist() == [0, 0, 128, 255, 255, 0]  # NaN (outside) is black
    assert windowed_rgb(values[None], w, invert=True)[0, :, 0].tolist() == [255, 255, 128, 0, 0, 0]


def test_auto_window_spans_the_1st_to_99th_percentile(rng):
    voxels = rng.uniform(0, 1000, size=100_000)
    lo, hi = auto_window(voxels).lo, auto_window(voxels).hi
    assert lo == pytest.approx(10, abs=3) and hi == pytest.approx(990, abs=3)
    assert auto_window(np.zeros(10)).width == 1.0  # a flat image still gets a usable window


def test_colormaps_run_from_dark_to_bright():
    for name in COLORMAPS:
        table = colormap(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    assert colormap("grayscale")[128].tolist() == [128, 128, 128]
    hot = colormap("Hot Iron")
    assert hot[0].tolist() == [0, 0, 0] and hot[255].tolist() == [255, 255, 255]
    assert hot[100, 0] > hot[100, 1] >= hot[100, 2]  # red first, then yellow, then white
    rgb = to_rgb(np.array([[0, 255, NO_DATA]]), "hot-iron")
    assert rgb[0].tolist() == [[0, 0, 0], [255, 255, 255], [0, 0, 0]]
    with pytest.raises(ValueError, match="known: grayscale"):
        colormap("viridis")


def test_transfer_lut_corrects_opacity_for_the_step():
    tf = TransferFunction(((0, 0, 0, 0), (100, 1, 1, 1)), ((0, 0.0), (100, 0.5)))
    for step in (0.25, REFERENCE_MM, 3.0):
        lut = tf.lut(step, size=101)
        assert (lut.lo, lut.hi) == (0, 100)
        np.testing.assert_allclose(lut.table[-1, 3], 1 - 0.5**step, rtol=1e-6)
        np.testing.assert_allclose(lut.table[50, :3], 0.5, rtol=1e-6)
        # n steps of s mm let through as much light as one step of n*s mm.
        assert (1 - lut.table[-1, 3]) ** (1 / step) == pytest.approx(0.5, rel=1e-5)


def test_transfer_presets_exist_and_are_valid():
    for name in ("ct-bone", "ct-soft-tissue", "ct-lung", "ct-angio", "mr-default", "pet-hot"):
        lut = TRANSFER_PRESETS[name].lut(0.5)
        assert lut.table.shape[1] == 4 and np.all((lut.table >= 0) & (lut.table <= 1))
    # Bone is opaque, air is not.
    bone = get_transfer("CT_Bone").lut(1.0)
    assert bone.table[0, 3] == 0 and bone.table[-1, 3] > 0.5
    with pytest.raises(ValueError, match="known: ct-bone"):
        get_transfer("ct-kidney")


@pytest.mark.parametrize(
    ("colour", "opacity", "match"),
    [
        (((0, 0, 0, 0), (-1, 1, 1, 1)), ((0, 0.1),), "ascending"),
        (((0, 0, 0, 2),), ((0, 0.1),), r"\[0, 1\]"),
        (((0, 0, 0),), ((0, 0.1),), "rows of 4"),
        (((0, 0, 0, 0),), ((np.nan, 0.1),), "finite"),
    ],
)
def test_bad_transfer_functions_are_refused(colour, opacity, match):
    with pytest.raises(ValueError, match=match):
        TransferFunction(colour, opacity)


def test_default_display_follows_modality_and_units():
    from voxcast.render.engine.transfer import default_transfer_name
    from voxcast.render.engine.window import default_window_name

    assert default_window_name("CT", "HU") == "soft-tissue"
    assert default_window_name("PT", "SUVbw") == "suv"
    # PET the catalog could not convert to SUV has no fixed scale: auto, not 0..5.
    assert default_window_name("PT", "BQML") == "auto" and default_window_name("MR") == "auto"
    assert default_transfer_name("CT") == "ct-bone" and default_transfer_name("PT", "SUVbw") == "pet-hot"
    assert default_transfer_name("PT", "BQML") == "mr-default"
