"""`voxcast render`: one picture of a catalog series, to a file; and `voxcast serve render`.

    voxcast render SERIES_UID --mode mpr|mip|minip|avgip|vr [--plane axial|coronal|sagittal]
        [--normal X,Y,Z] [--center X,Y,Z] [--slab MM] [--fusion SERIES_UID] [--preset NAME]
        [--window C,W] [--size WxH] [--pixel MM] [--backend NAME] -o OUT

OUT is .png, .jpg or .tiff (the displayed picture) or .npy (mpr and projections without fusion:
float32 values in modality units, rows top to bottom and columns left to right as displayed, NaN
where the view misses the volume). Volumes come from the local catalog (VOXCAST_HOME), or from a
catalog service with --catalog HOST:PORT; --server HOST:PORT renders on a render service instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .engine.backends import BACKENDS
from .engine.colormaps import COLORMAPS
from .engine.request import MODES, SLAB_MODES
from .engine.transfer import TRANSFER_PRESETS
from .engine.views import STANDARD_PLANES
from .engine.window import AUTO, WINDOW_PRESETS

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
DEFAULT_SIZE = (512, 512)
JPEG_QUALITY = 95
# Without --plane, slices are axial and projections/volume renderings are seen from the front.
DEFAULT_PLANE = {"mpr": "axial"}
DEFAULT_PROJECTION_PLANE = "coronal"


def _numbers(text: str, n: int, sep: str, what: str) -> tuple[float, ...]:
    parts = text.replace(" ", "").split(sep)
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != n or not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


def _vec3(text: str) -> tuple[float, float, float]:
    return _numbers(text, 3, ",", "X,Y,Z in mm")  # type: ignore[return-value]


def _window(text: str) -> tuple[float, float]:
    return _numbers(text, 2, ",", "C,W (window center and width)")  # type: ignore[return-value]


def _size(text: str) -> tuple[int, int]:
    w, h = _numbers(text.lower(), 2, "x", "WxH in pixels, e.g. 512x512")
    if w != int(w) or h != int(h):
        raise argparse.ArgumentTypeError(f"expected whole pixels WxH, got {text!r}")
    return int(w), int(h)


def register(commands, serve_commands) -> None:
    from .server_cli import add_serve_parser

    p = commands.add_parser(
        "render",
        help="render one picture of a series (MPR, MIP/MinIP/AvgIP, VR, PET/CT fusion) to a file",
        description="Render one picture of a catalog series (optionally fused with a second series) to "
        "a PNG/JPEG/TIFF picture or, for mpr and projections without fusion, a float32 .npy of the "
        "values in modality units (NaN outside the volume).",
    )
    p.add_argument("series_uid", metavar="SERIES_UID")
    p.add_argument("--mode", choices=MODES, default="mpr", help="default: mpr")
    p.add_argument(
        "--plane",
        choices=tuple(STANDARD_PLANES),
        help="view orientation (default: axial for mpr, coronal for projections and vr)",
    )
    p.add_argument("--normal", type=_vec3, metavar="X,Y,Z", help="oblique view along this LPS direction")
    p.add_argument(
        "--center", type=_vec3, metavar="X,Y,Z", help="image centre, LPS mm (default: volume centre)"
    )
    p.add_argument(
        "--slab", type=float, default=0.0, metavar="MM", help="slab thickness (0 = thin / whole volume)"
    )
    p.add_argument("--slab-mode", choices=SLAB_MODES, default="mip", help="how an mpr slab combines")
    p.add_argument("--fusion", metavar="SERIES_UID", help="a second series (PET) blended over the first")
    p.add_argument(
        "--preset",
        default="",
        help=f"window preset ({', '.join([*WINDOW_PRESETS, AUTO])}) or, for vr, transfer function "
        f"({', '.join(TRANSFER_PRESETS)}); default by modality",
    )
    p.add_argument("--window", type=_window, metavar="C,W", help="window center and width (modality units)")
    p.add_argument("--invert", action="store_true", help="invert the grey scale")
    p.add_argument("--colormap", default="grayscale", help=f"one of {', '.join(COLORMAPS)}")
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE, metavar="WxH", help="default: 512x512")
    p.add_argument("--pixel", type=float, metavar="MM", help="pixel size (default: fit the whole volume)")
    p.add_argument("--step", type=float, default=0.0, metavar="MM", help="ray step (default: per mode)")
    p.add_argument("--shading", action="store_true", help="gradient shading (vr)")
    p.add_argument("--fusion-opacity", type=float, default=0.5, metavar="A", help="0..1, default 0.5")
    p.add_argument("--fusion-colormap", default="hot-iron", help="default: hot-iron")
    p.add_argument("--fusion-window", type=_window, metavar="C,W", help="fusion window (default by modality)")
    p.add_argument("--backend", choices=("auto", *BACKENDS), help="default: VOXCAST_BACKEND")
    p.add_argument("--catalog", metavar="HOST:PORT", help="a catalog service (default: the local catalog)")
    p.add_argument("--server", metavar="HOST:PORT", help="render on this render service")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help=".png .jpg .tiff or .npy")
    p.set_defaults(func=cmd_render)
    add_serve_parser(serve_commands)


def _fail(message: str):
    from voxcast.cli import VoxcastCliError

    return VoxcastCliError(message)


def check_output(args: argparse.Namespace) -> str:
    """The output kind ('npy' or an image format), refusing what the mode cannot give."""
    suffix = args.output.suffix.lower()
    if suffix == ".npy":
        if args.mode == "vr" or args.fusion:
            raise _fail(".npy holds modality values: only for mpr/mip/minip/avgip without --fusion")
        if args.server:
            raise _fail(".npy needs a local render (the service sends pictures); drop --server")
        return "npy"
    if suffix not in IMAGE_SUFFIXES:
        raise _fail(f"unknown output type {suffix or '(none)'}; use .png, .jpg, .tiff or .npy")
    return IMAGE_SUFFIXES[suffix]


def build_request(args: argparse.Namespace, volume):
    """The ViewRequest of the command line, its view placed on `volume`."""
    from .engine import ViewRequest, oblique, standard_plane

    size = args.size
    try:
        if args.normal is not None:
            plane = oblique(args.normal, volume, args.center, size, args.pixel)
        else:
            name = args.plane or DEFAULT_PLANE.get(args.mode, DEFAULT_PROJECTION_PLANE)
            plane = standard_plane(name, volume, args.center, size, args.pixel)
        return ViewRequest(
            mode=args.mode,
            plane=plane,
            preset=args.preset,
            window=args.window,
            invert=args.invert,
            colormap=args.colormap,
            slab_mm=args.slab,
            slab_mode=args.slab_mode,
            step_mm=args.step,
            shading=args.shading,
            fusion_opacity=args.fusion_opacity,
            fusion_colormap=args.fusion_colormap,
            fusion_window=args.fusion_window,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None


def load_volume(series_uid: str, catalog_addr: str | None = None):
    """A series' Volume from the local catalog, or from a catalog service."""
    import grpc
    from voxcast.catalog.errors import CatalogError

    try:
        if catalog_addr:
            from voxcast.catalog.client import CatalogClient

            with CatalogClient(catalog_addr) as client:
                return client.fetch_volume(series_uid)
        from voxcast.catalog.catalog import Catalog

        catalog = Catalog.open()
        try:
            return catalog.fetch_volume(series_uid)
        finally:
            catalog.close()
    except CatalogError as exc:
        raise _fail(f"series {series_uid}: {exc}") from None
    except grpc.RpcError as exc:
        raise _fail(f"catalog at {catalog_addr}: {exc.code().name}: {exc.details()}") from None


def render_local(args: argparse.Namespace, volume, request):
    """RenderedImage of the request on this machine."""
    from .engine import BackendUnavailable, prepare_volume, render

    try:
        # One picture: the full-resolution level only.
        prepared = prepare_volume(volume, args.backend, levels=1)
        fusion = None
        if args.fusion:
            fusion = prepare_volume(load_volume(args.fusion, args.catalog), prepared.backend, levels=1)
        return render(prepared, request, fusion=fusion)
    except (ValueError, BackendUnavailable) as exc:
        raise _fail(str(exc)) from None


def render_on_server(args: argparse.Namespace, volume, request) -> np.ndarray:
    """RGB of the request rendered by the render service at --server."""
    from .server_cli import render_remote
    from .wire import to_proto

    return render_remote(args.server, to_proto(request, args.series_uid, args.fusion or ""))


def write_output(path: Path, kind: str, rgb: np.ndarray, values: np.ndarray | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "npy":
        np.save(path, np.asarray(values, dtype=np.float32))
        return
    from PIL import Image

    options = {"quality": JPEG_QUALITY} if kind == "JPEG" else {}
    Image.fromarray(rgb).save(path, format=kind, **options)


def cmd_render(args: argparse.Namespace) -> int:
    kind = check_output(args)
    started = time.perf_counter()
    if args.server:
        from .server_cli import remote_volume

        volume = remote_volume(args.server, args.series_uid)
        request = build_request(args, volume)
        rgb, values, labels, where = (
            render_on_server(args, volume, request),
            None,
            request.view.labels,
            args.server,
        )
    else:
        volume = load_volume(args.series_uid, args.catalog)
        request = build_request(args, volume)
        image = render_local(args, volume, request)
        rgb, values, labels, where = image.rgb, image.values, image.labels, image.backend
    write_output(args.output, kind, rgb, values)
    plane = request.view
    print(
        f"{args.output}: {args.mode} {plane.width}x{plane.height} px of {plane.pixel_mm:.3f} mm, "
        f"top {labels.top} left {labels.left}, {where}, {(time.perf_counter() - started) * 1e3:.0f} ms",
        file=sys.stderr,
    )
    return 0
