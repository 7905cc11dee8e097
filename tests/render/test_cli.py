"""`voxcast render` on the demo study imported into a local catalog (VOXCAST_HOME is a temp dir)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from voxcast.catalog.catalog import Catalog

from voxcast.cli import main
from voxcast.config import get_settings
from voxcast.demo.study import write_demo_study


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The small demo study in a catalog of its own, imported once for the module."""
    root = tmp_path_factory.mktemp("render-cli")
    demo = write_demo_study(root / "demo", "small")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXCAST_HOME", str(root / "home"))
        get_settings.cache_clear()
        catalog = Catalog.open()
        try:
            results = list(catalog.ingest([root / "demo"]))
            volume = catalog.fetch_volume(demo.ct_series_uid)
        finally:
            catalog.close()
    get_settings.cache_clear()
    assert len(results) == len(demo.ct_paths) + len(demo.pet_paths)
    return demo, volume, root / "home"


@pytest.fixture
def study(imported, monkeypatch):
    demo, volume, home = imported
    monkeypatch.setenv("VOXCAST_HOME", str(home))
    get_settings.cache_clear()
    return demo, volume


def run(*argv) -> int:
    return main(["render", *map(str, argv), "--backend", "numpy"])


def test_axis_aligned_npy_at_voxel_spacing_is_the_stored_slice(study, tmp_path):
    demo, volume = study
    k, r, c = 20, 32, 32
    centre = ",".join(f"{x:.6f}" for x in volume.index_to_world((k, r, c)))
    out = tmp_path / "axial.npy"
    # 65 pixels: the middle one (32) on column 32, pixels 0..63 on columns 0..63, pixel 64 outside.
    assert run(demo.ct_series_uid, "--mode", "mpr", "--plane", "axial", "--center", centre,
               "--pixel", "6.25", "--size", "65x65", "-o", out) == 0  # fmt: skip
    values = np.load(out)
    assert values.dtype == np.float32 and values.shape == (65, 65)
    np.testing.assert_array_equal(values[:64, :64], volume.voxels[k])
    assert np.all(np.isnan(values[64])) and np.all(np.isnan(values[:, 64]))


def test_pictures_in_each_format(study, tmp_path):
    demo, _ = study
    for name, argv in (
        ("mip.png", ["--mode", "mip", "--fusion", demo.pet_series_uid, "--size", "96x80"]),
        (
            "slab.jpg",
            ["--mode", "mpr", "--plane", "coronal", "--slab", "20", "--preset", "bone", "--size", "64x64"],
        ),
        ("vr.tiff", ["--mode", "vr", "--preset", "ct-bone", "--shading", "--size", "48x48"]),
        ("oblique.png", ["--normal", "0.2,0.1,1", "--window", "40,400", "--size", "64x32"]),
    ):
        assert run(demo.ct_series_uid, *argv, "-o", tmp_path / name) == 0
        image = Image.open(tmp_path / name)
        width, height = (int(x) for x in argv[argv.index("--size") + 1].split("x"))
        assert image.size == (width, height) and image.mode == "RGB"
        assert np.asarray(image).max() > 0


def test_default_view_is_512_square_through_the_volume_centre(study, tmp_path):
    demo, volume = study
    assert run(demo.ct_series_uid, "--plane", "coronal", "-o", tmp_path / "coronal.npy") == 0
    values = np.load(tmp_path / "coronal.npy")
    assert values.shape == (512, 512)
    # The whole volume fits: the outermost rows and columns are outside it.
    assert np.isnan(values[0]).all() and np.isnan(values[:, 0]).all() and not np.isnan(values[256, 256])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mode", "vr", "-o", "x.npy"], ".npy holds modality values"),
        (["-o", "x.bmp"], "unknown output type"),
        (["--preset", "ct-kidney", "-o", "x.png"], "preset"),
        (["--pixel", "-1", "-o", "x.png"], "pixel_mm"),
        (["--normal", "0,0,0", "-o", "x.png"], "normal"),
    ],
)
def test_bad_arguments_are_one_line_errors(study, tmp_path, capsys, argv, message):
    demo, _ = study
    argv = [str(tmp_path / a) if a.startswith("x.") else a for a in argv]
    assert run(demo.ct_series_uid, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_series_is_reported(tmp_path, capsys):
    assert run("1.2.3.999", "-o", tmp_path / "x.png") == 2
    assert "1.2.3.999" in capsys.readouterr().err


def test_malformed_numbers_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["render", "1.2.3", "--size", "512", "-o", "x.png"])
    assert "WxH" in capsys.readouterr().err
