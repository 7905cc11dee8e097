"""Render service under load: N concurrent viewers (1, 4, 16), each streaming a sequence of view
changes (a scroll through axial slices, a 30 mm slab MIP rotation) against the demo study, through a real
catalog and a render service running in its own process.

Prints, per sequence and number of clients: time to the preview frame and to the full frame
(p50/p95, from sending the request), full frames per second over all clients, and the engine-only
time of the same views measured in this run (render of the preview plus the full frame, one at a
time, no service), so the service overhead at one client is the ratio of the two.

Environment: VOXCAST_BENCH_SIZE (demo size, default large), VOXCAST_BENCH_CLIENTS (default 1,4,16),
VOXCAST_BENCH_VIEWS (views per client per sequence, default 16), VOXCAST_BACKEND (render backend).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from voxcast.config import Settings
from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import render_pb2, render_pb2_grpc

SEQUENCES = ("mpr-scroll", "slab-mip-rotation")
# A thick-slab MIP turning about the volume centre; a whole-volume MIP of the large CT takes seconds
# per frame on a CPU, which would make 16 clients a very long wait.
SLAB_MM = 30.0


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _serve_render(settings_json: str, catalog_addr: str, ports) -> None:
    """Child process: a render service until SIGTERM (graceful stop)."""
    from voxcast.render.server import create_server

    settings = Settings.model_validate_json(settings_json)
    server, port = create_server(settings, 0, catalog_addr, host="127.0.0.1")
    server.start()
    ports.put(port)
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(5).wait()


def _vec(v) -> render_pb2.Plane:
    from voxcast.v1 import common_pb2

    x, y, z = (float(c) for c in v)
    return common_pb2.Vec3(x=x, y=y, z=z)


def view_requests(volume, sequence: str, client: int, count: int, size: int = 512):
    """The requests of one client's sequence; clients start at different places, as different
    viewers would (identical requests would be coalesced into one render)."""
    from voxcast.render.engine import Camera, axial, orbit

    requests = []
    if sequence == "mpr-scroll":
        base = axial(volume, size=(size, size))
        step = float(volume.spacing[0])
        first = (client * 7) % max(1, volume.shape[0] - count)
        for i in range(count):
            center = base.center + (first + i - volume.shape[0] / 2) * step * base.normal
            req = render_pb2.RenderRequest(mode=render_pb2.MPR, width=size, height=size, preset="soft-tissue")
            req.plane.CopyFrom(
                render_pb2.Plane(
                    center=_vec(center), right=_vec(base.right), down=_vec(base.down), pixel_mm=base.pixel_mm
                )
            )
            requests.append(req)
    else:
        camera = Camera(volume.center, (0, 1, 0), (0, 0, 1), 1.0, size, size)
        for i in range(count):
            view = orbit(camera, azimuth_deg=client * 11.0 + i * 360.0 / count)
            req = render_pb2.RenderRequest(
                mode=render_pb2.MIP, width=size, height=size, preset="bone", slab_mm=SLAB_MM
            )
            req.camera.CopyFrom(
                render_pb2.Camera(target=_vec(view.target), direction=_vec(view.direction), up=_vec(view.up))
            )
            requests.append(req)
    return requests


@dataclass
class Timings:
    preview_ms: list[float] = field(default_factory=list)
    full_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_client(addr: str, series_uid: str, requests, out: Timings, barrier: threading.Barrier) -> None:
    with grpc.insecure_channel(addr, options=CHANNEL_OPTIONS) as channel:
        stub = render_pb2_grpc.RenderServiceStub(channel)
        barrier.wait()
        for req in requests:
            req.series_uid = series_uid
            started = time.perf_counter()
            try:
                for frame in stub.Render(req, timeout=120):
                    ms = (time.perf_counter() - started) * 1e3
                    (out.preview_ms if frame.rung == render_pb2.PREVIEW else out.full_ms).append(ms)
            except grpc.RpcError as exc:
                out.errors.append(f"{exc.code().name}: {exc.details()}")


def engine_only(prepared, requests, volume) -> list[float]:
    """Engine time (ms) of preview + full render of each request, one at a time."""
    from voxcast.render import engine, wire
    from voxcast.render.ladder import FULL, PREVIEW

    times = []
    for req in requests:
        started = time.perf_counter()
        for step in (PREVIEW, FULL):
            engine.render(prepared, wire.view_request(req, volume, step), level=step.level)
        times.append((time.perf_counter() - started) * 1e3)
    return times


def main() -> None:
    from voxcast.catalog.client import CatalogClient
    from voxcast.catalog.server import create_server as create_catalog
    from voxcast.render import engine

    from voxcast.demo import write_demo_study

    size = os.environ.get("VOXCAST_BENCH_SIZE", "large")
    clients_list = [int(n) for n in os.environ.get("VOXCAST_BENCH_CLIENTS", "1,4,16").split(",")]
    count = int(os.environ.get("VOXCAST_BENCH_VIEWS", "16"))
    with tempfile.TemporaryDirectory(prefix="voxcast-bench-service-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        started = time.perf_counter()
        study = write_demo_study(Path(tmp) / "study", size=size)
        catalog, catalog_port = create_catalog(settings, port=0)
        catalog.start()
        catalog_addr = f"127.0.0.1:{catalog_port}"
        client = CatalogClient(catalog_addr)
        list(client.ingest([str(p) for p in study.ct_paths]))
        print(
            f"demo {size} CT {study.ct.shape} written and ingested in {time.perf_counter() - started:.1f} s"
        )

        ctx = multiprocessing.get_context("spawn")
        ports = ctx.Queue()
        child = ctx.Process(target=_serve_render, args=(settings.model_dump_json(), catalog_addr, ports))
        child.start()
        try:
            addr = f"127.0.0.1:{ports.get(timeout=120)}"
            with grpc.insecure_channel(addr, options=CHANNEL_OPTIONS) as channel:
                stub = render_pb2_grpc.RenderServiceStub(channel)
                t0 = time.perf_counter()
                stub.Preload(render_pb2.PreloadRequest(series_uid=study.ct_series_uid), timeout=600)
                print(
                    f"render service preload (fetch + prepare) {time.perf_counter() - t0:.1f} s", flush=True
                )
                for sequence in SEQUENCES:  # warm up (kernel compilation, caches)
                    for req in view_requests(study.ct, sequence, 0, 2):
                        req.series_uid = study.ct_series_uid
                        list(stub.Render(req, timeout=600))

            backend = engine.get_backend(settings.backend)
            prepared = engine.prepare_volume(study.ct, backend)
            rows = []
            for sequence in SEQUENCES:
                reference = view_requests(study.ct, sequence, 0, count)
                engine_only(prepared, reference[:2], study.ct)  # warm up in this process
                engine_ms = engine_only(prepared, reference, study.ct)
                for n in clients_list:
                    timings = [Timings() for _ in range(n)]
                    barrier = threading.Barrier(n)
                    threads = [
                        threading.Thread(
                            target=run_client,
                            args=(
                                addr,
                                study.ct_series_uid,
                                view_requests(study.ct, sequence, c, count),
                                t,
                                barrier,
                            ),
                        )
                        for c, t in enumerate(timings)
                    ]
                    t0 = time.perf_counter()
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    wall = time.perf_counter() - t0
                    preview = [ms for t in timings for ms in t.preview_ms]
                    full = [ms for t in timings for ms in t.full_ms]
                    errors = [e for t in timings for e in t.errors]
                    rows.append((sequence, n, preview, full, len(full) / wall, engine_ms, errors))
                    print(f"  {sequence} x{n}: {len(full)} frames in {wall:.1f} s", flush=True)
        finally:
            child.terminate()
            child.join(30)
            client.close()
            catalog.stop(0)

    print(
        f"\nrender service, demo {size} CT {study.ct.shape}, backend {backend.name}, 512x512 frames, "
        f"{count} views per client, {os.cpu_count()} CPUs"
    )
    header = ("sequence", "clients", "preview p50", "preview p95", "full p50", "full p95", "fps",
              "engine p50", "overhead", "errors")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for sequence, n, preview, full, fps, engine_ms, errors in rows:
        eng = statistics.median(engine_ms)
        overhead = statistics.median(full) / eng if n == 1 else float("nan")
        print(
            f"| {sequence} | {n} | {_percentile(preview, 50):.1f} | {_percentile(preview, 95):.1f} | "
            f"{_percentile(full, 50):.1f} | {_percentile(full, 95):.1f} | {fps:.1f} | {eng:.1f} | "
            + (f"{overhead:.2f}x" if n == 1 else "-")
            + f" | {len(errors)} |"
        )
    print("times in ms from sending the request; engine = preview + full render without the service; "
          "overhead = full p50 / engine p50 at one client")  # fmt: skip


if __name__ == "__main__":
    main()
