"""`voxcast import`, `voxcast ls` and `voxcast serve catalog`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Iterator

import grpc

from voxcast.v1 import catalog_pb2

log = logging.getLogger(__name__)
SERIES_PAGE = 500


def register(commands, serve_commands) -> None:
    p = commands.add_parser("import", help="import DICOM files, folders, zip archives or DICOMDIRs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--catalog", metavar="HOST:PORT", help="a remote catalog service (default: local catalog)")
    p.set_defaults(func=cmd_import)

    p = commands.add_parser("ls", help="list the catalog's series")
    p.add_argument("--json", action="store_true", help="one JSON object per series")
    p.add_argument("--catalog", metavar="HOST:PORT", help="a remote catalog service (default: local catalog)")
    p.set_defaults(func=cmd_ls)

    p = serve_commands.add_parser("catalog", help="run the catalog gRPC service")
    p.add_argument("--port", type=int, default=None, help="gRPC port (default: VOXCAST_CATALOG_PORT)")
    p.add_argument("--host", default="[::]", help="interface to bind (default: all)")
    p.set_defaults(func=cmd_serve)


def _quiet_pydicom() -> None:
    """pydicom warns about every odd value it meets; ingest reports what matters per file, so keep
    the console for that unless debugging."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pydicom").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"pydicom\.")


def _open(address: str | None, timeout: float = 10.0):
    """The local catalog, or a client of a remote one: both offer the same methods."""
    if address:
        from .client import CatalogClient

        client = CatalogClient(address)
        try:
            client.wait_ready(timeout=timeout)
        except grpc.FutureTimeoutError:
            from voxcast.cli import VoxcastCliError

            client.close()
            raise VoxcastCliError(f"no catalog service answers at {address}") from None
        return client
    from .catalog import Catalog

    return Catalog.open()


def cmd_import(args: argparse.Namespace) -> int:
    from .ingest import STATUS_NAMES, result_json

    _quiet_pydicom()
    catalog = _open(args.catalog)
    counts: Counter[str] = Counter()
    try:
        for result in catalog.iter_ingest(args.paths):
            status = STATUS_NAMES.get(result.status, "rejected")
            counts[status] += 1
            if args.json:
                print(json.dumps(result_json(result)), flush=True)
            elif status == "rejected":
                print(f"rejected  {result.path}: {result.reason}", file=sys.stderr)
    finally:
        catalog.close()
    if not args.json:
        print(", ".join(f"{counts[s]} {s}" for s in ("indexed", "duplicate", "rejected")))
    return 0


def iter_series(catalog) -> Iterator[catalog_pb2.Series]:
    offset = 0
    while True:
        studies = catalog.search_studies(limit=SERIES_PAGE, offset=offset)
        for study in studies:
            yield from catalog.list_series(study.study_uid)
        if len(studies) < SERIES_PAGE:
            return
        offset += len(studies)


def series_json(series: catalog_pb2.Series) -> dict:
    """The object `voxcast ls --json` prints for one series."""
    out = {
        "study_uid": series.study_uid,
        "series_uid": series.series_uid,
        "modality": series.modality,
        "description": series.description,
        "patient_id": series.patient_id,
        "instances": series.num_instances,
        "is_volume": series.is_volume,
    }
    if series.is_volume:
        out["volume"] = geometry_json(series.geometry)
        out["units"] = series.geometry.units
        out["warnings"] = list(series.geometry.warnings)
    else:
        out["reason"] = series.not_volume_reason
    return out


def geometry_json(geometry) -> dict:
    import numpy as np

    from voxcast.grpcio import geometry_from_proto
    from voxcast.volume import Volume

    g = geometry_from_proto(geometry)
    # Geometry without voxels: a broadcast view has the shape and costs no memory.
    voxels = np.broadcast_to(np.zeros((), np.int16), g["shape"])
    return Volume.from_geometry(voxels, g["origin"], g["spacing"], g["direction"]).geometry_dict()


def cmd_ls(args: argparse.Namespace) -> int:
    _quiet_pydicom()
    catalog = _open(args.catalog)
    try:
        for series in iter_series(catalog):
            if args.json:
                print(json.dumps(series_json(series)), flush=True)
                continue
            if series.is_volume:
                g = series.geometry
                shape = "x".join(str(n) for n in g.shape)
                spacing = "x".join(f"{v:g}" for v in g.spacing_mm)
                what = f"volume {shape} @ {spacing} mm {g.units}".rstrip()
            else:
                what = f"not a volume: {series.not_volume_reason}"
            print(
                f"{series.modality or '?':4} {series.series_uid}  {series.num_instances:5d} inst  "
                f"{series.description[:32]:32}  {what}"
            )
    finally:
        catalog.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from voxcast.config import get_settings

    from .server import create_server

    _quiet_pydicom()
    settings = get_settings()
    port = settings.catalog_port if args.port is None else args.port
    server, bound = create_server(settings, port, host=args.host)
    server.start()
    log.info(
        "catalog service listening on %s:%d (database %s, blobs %s)",
        args.host,
        bound,
        settings.db_url.split("@")[-1],
        settings.blobs,
    )
    stopped = threading.Event()

    def stop(*_):
        server.stop(grace=5).wait()
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        stop()
    return 0
