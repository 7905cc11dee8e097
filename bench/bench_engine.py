"""Render engine benchmark: median ms per frame for each mode and backend on the large demo CT,
at 512x512 and at the 256x256 preview as the render service's preview rung renders it (from the 2x
copy, whole-volume rays at PREVIEW_RAY_STEP times the copy's default step), each beside a reference
implementation of the same operation timed in the same run:

- scipy.ndimage.map_coordinates(order=1) for MPR (same sample points);
- numpy (max/min/mean over an axis) for axis-aligned projections;
- VTK vtkImageReslice (linear) for oblique MPR and the 30 mm slab MIP;
- VTK vtkFixedPointVolumeRayCastMapper, rendered offscreen, for full-volume MIP/MinIP and DVR with
  the same image size, transfer function and sample distance.

The views, ray grids and transfer functions are the engine's own (views, raygrid, transfer); the
times are those of the backend's project/composite call, the part that differs between backends.
`ratio` = reference ms / backend ms (above 1: the backend is faster).

    python -m bench engine                        # or: make bench (every bench_*.py)
    VOXCAST_BENCH_REPEATS=5 python -m bench engine  # more frames per median (default 3)
    VOXCAST_BENCH_CASES="oblique 512" python -m bench engine   # only rows whose label contains this
    VOXCAST_BENCH_BACKENDS=numba python -m bench engine      # only these backends
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from voxcast.render.engine.backends import availability, get_backend
from voxcast.render.engine.multires import downsample
from voxcast.render.engine.raygrid import default_step_mm, world_grid
from voxcast.render.engine.rays import RayGrid, Shading
from voxcast.render.engine.transfer import REFERENCE_MM, get_transfer
from voxcast.render.engine.views import Plane, axial, oblique
from voxcast.render.ladder import PREVIEW_RAY_STEP

from voxcast.demo.phantom import make_ct_phantom, make_pet_phantom
from voxcast.volume import Volume

REPEATS = int(os.environ.get("VOXCAST_BENCH_REPEATS", "3"))
# The numpy reference backend visits one sample of every ray per step: only run it where the
# total number of samples keeps a frame within seconds.
NUMPY_MAX_SAMPLES = 3_000_000
OBLIQUE_MPR_NORMAL = (0.3, 0.2, 0.93)  # a tilted axial
OBLIQUE_3D_NORMAL = (0.35, 0.9, 0.25)  # a tilted anterior view
SLAB_MM = 30.0
VR_PRESET = "ct-bone"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    system = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    return f"{model}, {cores} cores, {system}"


# Fast frames repeat until this much time has passed (at most MAX_REPEATS): on shared cores a
# median of many short frames is far steadier than one of three.
MIN_TOTAL_S = 0.5
MAX_REPEATS = 200
# A row's backends and its reference are timed in turns, ROUNDS times over: a burst of load on
# the shared cores then lands on one turn of each rather than on one side's whole median.
ROUNDS = 3
Frame = Callable[[], object]  # renders one frame


def median_ms(fns: dict[str, Frame], repeats: int = REPEATS, rounds: int = ROUNDS) -> dict[str, float]:
    """Median ms per frame of each function, over at least `repeats` frames (fast ones: MIN_TOTAL_S
    worth, up to MAX_REPEATS), taken in `rounds` turns. Each turn starts with an untimed frame
    (compilation, caches, VTK pipeline set-up), so that every timed frame runs as it would back
    to back: timing frame by frame in turn would measure cold caches instead."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            turn: list[float] = []
            while len(turn) < -(-repeats // rounds) or (
                sum(turn) < MIN_TOTAL_S * 1e3 / rounds and len(turn) < MAX_REPEATS // rounds
            ):
                t = time.perf_counter()
                fn()
                turn.append((time.perf_counter() - t) * 1e3)
            times[name] += turn
    return {name: statistics.median(t) for name, t in times.items()}


# ---------------------------------------------------------------------------- the cases


@dataclass
class Case:
    """One mode at one size: how to run it on a backend, and its reference implementation."""

    mode: str
    size: int
    volume: Volume
    plane: Plane
    grid: RayGrid
    kind: str  # "max" | "min" | "mean" | "vr" | "vr-shaded"
    reference: str  # "map_coordinates" | "numpy" | "vtkImageReslice" | "vtkFixedPoint"
    slab_mm: float = 0.0

    @property
    def samples(self) -> int:
        return self.grid.width * self.grid.height * self.grid.nsamples

    def lut(self):
        return get_transfer(VR_PRESET).lut(self.grid.step_mm)

    def shading(self) -> Shading | None:
        if self.kind != "vr-shaded":
            return None
        return Shading(np.linalg.inv(self.volume.affine[:3, :3]).T, -self.plane.normal)

    def runner(self, backend, handle) -> Callable[[], object]:
        if self.kind in ("vr", "vr-shaded"):
            lut, shading = self.lut(), self.shading()
            return lambda: backend.composite(handle, self.grid, lut, shading)
        return lambda: backend.project(handle, self.grid, self.kind)


def _on_voxel(volume: Volume, index) -> np.ndarray:
    return volume.index_to_world(np.asarray(index, dtype=np.float64))


def cases(volume: Volume, size: int, ray_step: float = 1.0) -> list[Case]:
    """The rows for one volume and image size; whole-volume rays step `ray_step` times the default,
    as the render service's preview rung does (voxcast.render.ladder)."""
    centre_idx = (np.asarray(volume.shape) - 1) / 2.0
    mid_slice = _on_voxel(volume, (volume.shape[0] // 2, centre_idx[1], centre_idx[2]))
    ax = axial(volume, center=mid_slice, size=(size, size))
    ob = oblique(OBLIQUE_MPR_NORMAL, volume, size=(size, size))
    ob3 = oblique(OBLIQUE_3D_NORMAL, volume, size=(size, size))
    # Axis-aligned projection: pixel = voxel, rays along the slice axis through voxel centres.
    ax_full = axial(volume, center=mid_slice, size=(size, size), pixel_mm=float(volume.spacing[2]))
    slab_step = default_step_mm(volume, ob.normal, "mip")
    out = [
        Case(
            "MPR axial",
            size,
            volume,
            ax,
            world_grid(ax, None).in_index_space(volume),
            "max",
            "map_coordinates",
        ),
        Case(
            "MPR oblique",
            size,
            volume,
            ob,
            world_grid(ob, None).in_index_space(volume),
            "max",
            "vtkImageReslice",
        ),
        Case(
            f"slab MIP {SLAB_MM:g} mm oblique",
            size,
            volume,
            ob,
            world_grid(ob, volume, slab_mm=SLAB_MM, step_mm=slab_step).in_index_space(volume),
            "max",
            "vtkImageReslice",
            SLAB_MM,
        ),
    ]
    aligned = world_grid(ax_full, volume, step_mm=float(volume.spacing[0])).in_index_space(volume)
    for name, kind in (("MIP", "max"), ("MinIP", "min"), ("AvgIP", "mean")):
        out.append(Case(f"{name} axial (aligned)", size, volume, ax_full, aligned, kind, "numpy"))
    step3 = ray_step * default_step_mm(volume, ob3.normal, "mip")
    full = world_grid(ob3, volume, step_mm=step3).in_index_space(volume)
    for name, kind in (("MIP", "max"), ("MinIP", "min"), ("AvgIP", "mean")):
        ref = "vtkFixedPoint" if kind != "mean" else "-"
        out.append(Case(f"{name} oblique", size, volume, ob3, full, kind, ref))
    vr_step = ray_step * default_step_mm(volume, ob3.normal, "vr")
    vr_grid = world_grid(ob3, volume, step_mm=vr_step).in_index_space(volume)
    out.append(Case("VR unshaded", size, volume, ob3, vr_grid, "vr", "vtkFixedPoint"))
    out.append(Case("VR shaded", size, volume, ob3, vr_grid, "vr-shaded", "vtkFixedPoint"))
    return out


# ---------------------------------------------------------------------------- references


def _grid_points(grid: RayGrid) -> np.ndarray:
    """(3, H, W) index coordinates of the thin grid's samples, for map_coordinates."""
    v = np.arange(grid.height)[:, None, None]
    u = np.arange(grid.width)[None, :, None]
    pts = np.asarray(grid.origin) + v * np.asarray(grid.dv) + u * np.asarray(grid.du)
    return np.moveaxis(pts, -1, 0)


def map_coordinates_ref(case: Case) -> Callable[[], object]:
    from scipy.ndimage import map_coordinates

    coords = _grid_points(case.grid)
    vox = case.volume.voxels
    return lambda: map_coordinates(vox, coords, order=1, mode="nearest", output=np.float32)


def numpy_ref(case: Case) -> Callable[[], object]:
    """numpy's reduction over the slice axis (the mean accumulating in float64, as the contract's)."""
    vox = case.volume.voxels
    fn = {"max": np.max, "min": np.min, "mean": np.mean}[case.kind]
    return lambda: fn(vox, axis=0)


def _vtk_image(volume: Volume):
    """The volume as vtkImageData in its own patient-aligned frame (the demo volumes are axial:
    index axes column/row/slice along x/y/z), spacing kept, origin at 0."""
    import vtk
    from vtk.util import numpy_support

    if not np.allclose(volume.direction, np.diag([1.0, 1.0, 1.0])[::-1]):
        raise ValueError("the VTK reference expects an axial volume")
    vox = np.ascontiguousarray(volume.voxels)
    image = vtk.vtkImageData()
    image.SetDimensions(vox.shape[2], vox.shape[1], vox.shape[0])
    image.SetSpacing(*volume.spacing[::-1])
    image.SetOrigin(0.0, 0.0, 0.0)
    array = numpy_support.numpy_to_vtk(vox.reshape(-1), deep=False)
    image.GetPointData().SetScalars(array)
    image._keep = vox  # the VTK array borrows this memory
    return image


def _to_vtk(volume: Volume, world) -> np.ndarray:
    """World LPS of an axial volume -> the VTK image frame (x = column, y = row, z = slice, mm)."""
    return np.asarray(world, dtype=np.float64) - volume.origin


def reslice_ref(case: Case) -> Callable[[], object]:
    import vtk

    plane, grid = case.plane, case.grid
    reslice = vtk.vtkImageReslice()
    reslice.SetInputData(_vtk_image(case.volume))
    axes = vtk.vtkMatrix4x4()
    for r in range(3):
        axes.SetElement(r, 0, plane.right[r])
        axes.SetElement(r, 1, plane.down[r])
        axes.SetElement(r, 2, plane.normal[r])
    origin = _to_vtk(case.volume, plane.top_left)
    for r in range(3):
        axes.SetElement(r, 3, origin[r])
    reslice.SetResliceAxes(axes)
    reslice.SetInterpolationModeToLinear()
    reslice.SetOutputSpacing(plane.pixel_mm, plane.pixel_mm, max(grid.step_mm, 1e-3))
    reslice.SetOutputOrigin(0.0, 0.0, 0.0)
    reslice.SetOutputExtent(0, grid.width - 1, 0, grid.height - 1, 0, 0)
    if grid.nsamples > 1:
        reslice.SetSlabModeToMax()
        reslice.SetSlabNumberOfSlices(grid.nsamples)

    def run():
        reslice.Modified()
        reslice.Update()

    return run


def raycast_ref(case: Case) -> Callable[[], object]:
    import vtk

    plane, grid = case.plane, case.grid
    mapper = vtk.vtkFixedPointVolumeRayCastMapper()
    mapper.SetInputData(_vtk_image(case.volume))
    mapper.SetSampleDistance(grid.step_mm)
    mapper.SetAutoAdjustSampleDistances(0)
    mapper.SetImageSampleDistance(1.0)
    prop = vtk.vtkVolumeProperty()
    prop.SetInterpolationTypeToLinear()
    colour = vtk.vtkColorTransferFunction()
    opacity = vtk.vtkPiecewiseFunction()
    if case.kind in ("vr", "vr-shaded"):
        tf = get_transfer(VR_PRESET)
        for x, r, g, b in tf.colour:
            colour.AddRGBPoint(x, r, g, b)
        for x, a in tf.opacity:
            opacity.AddPoint(x, a)
        prop.SetScalarOpacityUnitDistance(REFERENCE_MM)
        mapper.SetBlendModeToComposite()
        if case.kind == "vr-shaded":
            prop.ShadeOn()
            prop.SetAmbient(0.3)
            prop.SetDiffuse(0.7)
            prop.SetSpecular(0.3)
            prop.SetSpecularPower(20.0)
    else:
        lo, hi = float(case.volume.voxels.min()), float(case.volume.voxels.max())
        colour.AddRGBPoint(lo, 0, 0, 0)
        colour.AddRGBPoint(hi, 1, 1, 1)
        opacity.AddPoint(lo, 1.0)
        opacity.AddPoint(hi, 1.0)
        if case.kind == "max":
            mapper.SetBlendModeToMaximumIntensity()
        else:
            mapper.SetBlendModeToMinimumIntensity()
    prop.SetColor(colour)
    prop.SetScalarOpacity(opacity)
    actor = vtk.vtkVolume()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    renderer = vtk.vtkRenderer()
    renderer.AddVolume(actor)
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.AddRenderer(renderer)
    window.SetSize(grid.width, grid.height)
    camera = renderer.GetActiveCamera()
    camera.ParallelProjectionOn()
    centre = _to_vtk(case.volume, plane.center)
    distance = 2.0 * float(np.linalg.norm(np.asarray(case.volume.shape) * case.volume.spacing))
    camera.SetFocalPoint(*centre)
    camera.SetPosition(*(centre - distance * plane.normal))
    camera.SetViewUp(*(-plane.down))
    camera.SetParallelScale(grid.height * plane.pixel_mm / 2.0)
    renderer.ResetCameraClippingRange()
    return window.Render


REFERENCES = {
    "map_coordinates": map_coordinates_ref,
    "numpy": numpy_ref,
    "vtkImageReslice": reslice_ref,
    "vtkFixedPoint": raycast_ref,
}


def _vtk_works() -> str:
    """'' when VTK imports and renders offscreen, else why not."""
    try:
        import vtk

        window = vtk.vtkRenderWindow()
        window.SetOffScreenRendering(1)
        window.AddRenderer(vtk.vtkRenderer())
        window.SetSize(8, 8)
        window.Render()
    except Exception as exc:  # noqa: BLE001 - any failure means: no VTK column
        return f"{type(exc).__name__}: {exc}"
    return ""


# ---------------------------------------------------------------------------- the table


def backend_names() -> list[str]:
    names = []
    wanted = os.environ.get("VOXCAST_BENCH_BACKENDS", "numpy,numba,cupy").split(",")
    for name in (n.strip() for n in wanted if n.strip()):
        ok, why = availability(name)
        if ok:
            names.append(name)
        else:
            print(f"<!-- backend {name} skipped: {why} -->")
    return names


def ratio_names(names: list[str]) -> list[str]:
    """The backends that get a ratio column: the fast ones (numpy only when it is alone)."""
    return [n for n in names if n != "numpy"] or names


def _fmt(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def run(names: list[str], filter_text: str = "") -> list[list[str]]:
    ct = make_ct_phantom("large")
    pet, _ = make_pet_phantom(ct)
    levels = {512: ct, 256: downsample(ct)}
    vtk_problem = _vtk_works()
    if vtk_problem:
        print(f"<!-- VTK references skipped: {vtk_problem} -->")
    backends = {name: get_backend(name) for name in names}
    handles: dict[tuple[str, int], object] = {}
    # The 256x256 rows are the preview rung: the 2x copy, and its ray step on whole-volume rays.
    all_cases = [*cases(ct, 512), *cases(levels[256], 256, PREVIEW_RAY_STEP)]
    # Fusion: the PET sampled along the same view as the CT's oblique MIP (its own grid and step).
    pet_plane = oblique(OBLIQUE_3D_NORMAL, ct)
    pet_grid = world_grid(pet_plane, pet, step_mm=default_step_mm(pet, pet_plane.normal, "mip"))
    all_cases.append(
        Case(
            "PET MIP oblique (fusion layer)",
            512,
            pet,
            pet_plane,
            pet_grid.in_index_space(pet),
            "max",
            "vtkFixedPoint",
        )
    )
    rows = []
    for case in all_cases:
        label = f"{case.mode} {case.size}"
        if filter_text and filter_text.lower() not in label.lower():
            continue
        times: dict[str, float | None] = {}
        timed: dict[str, Frame] = {}
        for name, backend in backends.items():
            if name == "numpy" and case.samples > NUMPY_MAX_SAMPLES:
                times[name] = None
                continue
            key = (name, id(case.volume))
            if key not in handles:
                handles[key] = backend.prepare(case.volume.voxels)
            if name == "numpy":  # the slow oracle: one frame after the warm-up
                times.update(median_ms({name: case.runner(backend, handles[key])}, repeats=1, rounds=1))
            else:
                timed[name] = case.runner(backend, handles[key])
        if case.reference != "-" and not (case.reference.startswith("vtk") and vtk_problem):
            timed["reference"] = REFERENCES[case.reference](case)
        times.update(median_ms(timed))
        ref_ms = times.pop("reference", None)
        ratios = [f"{ref_ms / times[n]:.2f}" if ref_ms and times.get(n) else "-" for n in ratio_names(names)]
        image = f"{case.size}x{case.size}" + (" (preview: 2x copy)" if case.size == 256 else "")
        row = [case.mode, image, str(case.grid.nsamples), *(_fmt(times[n]) for n in names)]
        rows.append(row + [case.reference, _fmt(ref_ms), *ratios])
        print("|", " | ".join(rows[-1]), "|", flush=True)
    return rows


def main() -> None:
    filter_text = os.environ.get("VOXCAST_BENCH_CASES", "")
    print(f"\n## Render engine, large demo CT 512x512x400 int16 ({machine()})\n")
    names = backend_names()
    header = [
        "mode",
        "image",
        "samples/ray",
        *(f"{n} ms" for n in names),
        "reference",
        "ref ms",
        *(f"ratio {n}" for n in ratio_names(names)),
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|", flush=True)
    run(names, filter_text)
    print(
        f"\nmedian of at least {REPEATS} frames (fast ones: {MIN_TOTAL_S:g} s worth, up to {MAX_REPEATS}),"
        f" backends and reference timed in turns, {ROUNDS} turns each, every turn after an untimed frame;"
        "\nnumpy backend: 1 frame after a warm-up; ratio <backend> = reference ms / backend ms"
        " (above 1: the backend is faster)."
    )


if __name__ == "__main__":
    main()
