"""Command-line pieces of the render service: `voxcast serve render`, and rendering through a
running service (`voxcast render --server HOST:PORT`)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

DEFAULT_TIMEOUT_S = 300.0


def add_serve_parser(serve_commands) -> None:
    parser = serve_commands.add_parser(
        "render", help="run the render service (gRPC RenderService, health, Prometheus metrics)"
    )
    parser.add_argument("--port", type=int, default=None, help="gRPC port (default: VOXCAST_RENDER_PORT)")
    parser.add_argument(
        "--catalog", metavar="HOST:PORT", default=None, help="catalog address (default: VOXCAST_CATALOG_ADDR)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port, 0 = off (default: VOXCAST_METRICS_PORT)",
    )
    parser.set_defaults(func=_serve)


def _serve(args) -> int:
    from voxcast.render.server import serve

    from voxcast.config import get_settings

    settings = get_settings()
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    return serve(settings, port=args.port, catalog_addr=args.catalog)


def _channel(addr: str):
    import grpc

    from voxcast.grpcio import CHANNEL_OPTIONS

    return grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)


@contextmanager
def _as_cli_error(addr: str):
    """A failed call as one line for the user (NOT_FOUND: series ..., UNAVAILABLE: catalog ...)."""
    import grpc

    try:
        yield
    except grpc.RpcError as exc:
        from voxcast.cli import VoxcastCliError

        raise VoxcastCliError(f"render service at {addr}: {exc.code().name}: {exc.details()}") from None


def remote_volume(addr: str, series_uid: str):
    """The geometry of a series as the render service at `addr` sees it (loading it there), as a
    Volume whose voxels are a zero-filled placeholder taking no memory: enough to build views."""
    from voxcast.grpcio import geometry_from_proto
    from voxcast.v1 import render_pb2, render_pb2_grpc
    from voxcast.volume import Volume

    with _channel(addr) as channel, _as_cli_error(addr):
        response = render_pb2_grpc.RenderServiceStub(channel).Preload(
            render_pb2.PreloadRequest(series_uid=series_uid), timeout=DEFAULT_TIMEOUT_S
        )
    g = geometry_from_proto(response.geometry)
    placeholder = np.broadcast_to(np.zeros(1, dtype=np.float32), g["shape"])
    return Volume.from_geometry(
        placeholder,
        g["origin"],
        g["spacing"],
        g["direction"],
        frame_of_reference_uid=response.geometry.frame_of_reference_uid,
        units=response.geometry.units,
        series_uid=series_uid,
    )


def render_remote(addr: str, request, *, timeout: float = DEFAULT_TIMEOUT_S) -> np.ndarray:
    """Render a RenderRequest on the service at `addr`; returns the lossless picture, RGB uint8 HxWx3.

    The service streams its ladder (preview, full, lossless); the lossless rung is the exact engine
    output. Pictures only: the float values of `.npy` output need a local render."""
    from voxcast.v1 import render_pb2, render_pb2_grpc

    from .encode import decode

    wanted = render_pb2.RenderRequest()
    wanted.CopyFrom(request)
    wanted.lossless = True
    last = None
    with _channel(addr) as channel, _as_cli_error(addr):
        for frame in render_pb2_grpc.RenderServiceStub(channel).Render(wanted, timeout=timeout):
            last = frame
    if last is None or last.rung != render_pb2.LOSSLESS:
        raise RuntimeError(f"render service at {addr} ended the stream without a lossless frame")
    return decode(last.data)
