"""Every CUDA kernel source compiles with nvcc (no GPU needed), with the options the cupy backend
hands NVRTC, and defines every kernel the backend asks for. The cupy backend module itself imports
and reports what it lacks without cupy or a device, and its empty-space blocks (array code written
for any numpy-like module) are exact, checked here with numpy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from voxcast.render.engine.backends import cupy_backend
from voxcast.render.engine.backends.numpy_backend import lut_lookup, trilinear
from voxcast.render.engine.rays import TransferLUT

ARCHS = ("sm_80", "sm_90")  # A100, H100


def find_nvcc() -> str | None:
    return shutil.which("nvcc") or next(
        (str(p) for p in (Path("/usr/local/cuda/bin/nvcc"),) if p.exists()), None
    )


NVCC = find_nvcc()
needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc is not installed (not on PATH nor in /usr/local/cuda/bin)"
)
SOURCES = sorted(cupy_backend.KERNEL_DIR.glob("*.cu"))


def mangled_prefix(expression: str) -> str:
    """Itanium mangling of `name<args>` up to the parameters: `_Z<len><name>I<args>E`."""
    name, targs = re.fullmatch(r"(\w+)<(.+)>", expression).groups()
    codes = {"short": "s", "float": "f", "false": "Lb0E", "true": "Lb1E"}
    return f"_Z{len(name)}{name}I" + "".join(codes[t.strip()] for t in targs.split(",")) + "E"


def test_every_source_is_loaded_by_the_backend():
    assert SOURCES, "no .cu files found"
    assert sorted(p.name for p in SOURCES) == sorted(cupy_backend.KERNEL_FILES)


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_kernel_source_compiles_with_nvcc(source: Path, arch: str, tmp_path):
    ptx = tmp_path / f"{source.stem}.ptx"
    cmd = [NVCC, "--ptx", f"-arch={arch}", *cupy_backend.compile_options(), "-o", str(ptx), str(source)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    assert "warning" not in result.stderr.lower(), result.stderr
    entries = re.findall(r"\.entry\s+(\w+)", ptx.read_text())
    # Each name expression the backend asks NVRTC for is instantiated here, under its own mangled name.
    for expression in cupy_backend.NAME_EXPRESSIONS[source.name]:
        prefix = mangled_prefix(expression)
        assert any(e.startswith(prefix) for e in entries), (expression, entries)


def test_module_imports_and_explains_without_cupy(monkeypatch):
    def no_cupy():
        raise ImportError("No module named 'cupy'")

    monkeypatch.setattr(cupy_backend, "_import_cupy", no_cupy)
    assert cupy_backend.is_available() is False
    assert "cupy is not importable" in cupy_backend.missing()


@pytest.mark.parametrize("shape", [(1, 40, 60), (17, 24, 9), (30, 33, 41)])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_empty_space_blocks_never_drop_a_visible_sample(shape, dtype):
    """Where the composite kernel skips a block, every sample it would have taken there (any point
    whose trilinear cube starts in the block, as vx_block finds it) gets alpha 0 from the LUT."""
    rng = np.random.default_rng(7)
    voxels = rng.normal(0.0, 100.0, size=shape)
    voxels[voxels.shape[0] // 2 :, :4, :4] += 1500.0  # a bright corner: some blocks are visible
    voxels = np.round(voxels).astype(dtype)
    table = np.zeros((64, 4), dtype=np.float32)
    table[:, :3] = rng.uniform(0, 1, size=(64, 3))
    table[50:58, 3] = rng.uniform(0.1, 0.5, size=8)  # only a band of bright values is visible
    lut = TransferLUT(table, float(voxels.min()), float(voxels.max()))
    scale = (len(table) - 1) / (lut.hi - lut.lo)
    handle = cupy_backend.CupyVolume(voxels, *cupy_backend._block_bounds(np, voxels))
    occupied = cupy_backend._occupied(np, handle, table, lut.lo, scale)
    assert occupied.shape == handle.block_max.shape and 0 < occupied.sum() < occupied.size
    n = np.asarray(shape)
    points = rng.uniform(-0.5, 1.0, size=(200_000, 3)) * n  # inside, on the faces and just beyond
    base = np.minimum(np.clip(points, 0, n - 1).astype(np.int64), np.maximum(n - 2, 0))
    block = base >> cupy_backend.BLOCK_SHIFT
    skipped = occupied[block[:, 0], block[:, 1], block[:, 2]] == 0
    alpha = lut_lookup(lut, trilinear(voxels, points[skipped]))[:, 3]
    assert skipped.sum() > 1000 and np.all(alpha == 0.0)
