"""Render service under load: N concurrent viewers (1, 4, 16), each streaming a sequence of view
changes (a scroll through axial slices, a 30 mm slab MIP rotation, a shaded whole-volume VR rotation)
against the demo study, through a real catalog and a render service running in its own process.

Prints, per sequence and number of clients: time to the preview frame and to the full frame
(p50/p95, from sending the request), full frames per second over all clients, the render time the
server reports, and at one client the engine-only time of the same views (preview plus full render
in a process of its own, alternating view by view with the service requests), so the service
overhead is a ratio measured under the same machine load.

Environment: VOXCAST_BENCH_SIZE (demo size, default large), VOXCAST_BENCH_CLIENTS (default 1,4,16),
VOXCAST_BENCH_VIEWS (views per client per sequence, default 12), VOXCAST_BENCH_SEQUENCES (default all:
mpr-scroll,slab-mip-rotation,vr-rotation), VOXCAST_BACKEND (render backend).
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

SEQUENCES = ("mpr-scroll", "slab-mip-rotation", "vr-rotation")
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
    server.warmed.wait()  # measure a ready service, as a readiness probe would let traffic in
    ports.put((port, server.metrics.value("voxcast_render_warmup_seconds")))
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
            if sequence == "slab-mip-rotation":
                req = render_pb2.RenderRequest(
                    mode=render_pb2.MIP, width=size, height=size, preset="bone", slab_mm=SLAB_MM
                )
            else:  # vr-rotation: the whole volume, the CT bone transfer function, shaded
                req = render_pb2.RenderRequest(mode=render_pb2.VR, width=size, height=size, shading=True)
            req.camera.CopyFrom(
                render_pb2.Camera(target=_vec(view.target), direction=_vec(view.direction), up=_vec(view.up))
            )
            requests.append(req)
    return requests


@dataclass
class Sample:
    """One view change as a client sees it (ms from sending the request) and as the server says."""

    preview_ms: float = float("nan")
    full_ms: float = float("nan")
    server_render_ms: float = 0.0  # preview + full render, as the frames report
    server_encode_ms: float = 0.0  # preview + full encoding, as the frames report
    engine_ms: float = float("nan")  # the same renders without the service (paired runs only)


@dataclass
class ClientResult:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def stream_one(stub, req) -> Sample:
    sample = Sample()
    started = time.perf_counter()
    for frame in stub.Render(req, timeout=600):
        ms = (time.perf_counter() - started) * 1e3
        if frame.rung == render_pb2.PREVIEW:
            sample.preview_ms = ms
        else:
            sample.full_ms = ms
        sample.server_render_ms += frame.render_ms
        sample.server_encode_ms += frame.encode_ms
    return sample


def run_client(addr: str, requests, out: ClientResult, barrier: threading.Barrier) -> None:
    with grpc.insecure_channel(addr, options=CHANNEL_OPTIONS) as channel:
        stub = render_pb2_grpc.RenderServiceStub(channel)
        barrier.wait()
        for req in requests:
            try:
                out.samples.append(stream_one(stub, req))
            except grpc.RpcError as exc:
                out.errors.append(f"{exc.code().name}: {exc.details()}")


def engine_only(prepared, req) -> float:
    """Engine time (ms) of the preview and the full render of `req`, without the service."""
    from voxcast.render import engine, wire
    from voxcast.render.ladder import FULL, PREVIEW

    started = time.perf_counter()
    for step in (PREVIEW, FULL):
        engine.render(prepared, wire.view_request(req, prepared, step), level=step.level)
    return (time.perf_counter() - started) * 1e3


def _engine_worker(conn, settings_json: str, catalog_addr: str, series_uid: str) -> None:
    """Child process: the engine alone, on the volume the service gets from the catalog, in a
    process as quiet as the service's own (no gRPC server or client threads here)."""
    from voxcast.catalog.client import CatalogClient
    from voxcast.render import engine

    settings = Settings.model_validate_json(settings_json)
    with CatalogClient(catalog_addr) as client:
        volume = client.fetch_volume(series_uid)
    prepared = engine.prepare_volume(volume, engine.get_backend(settings.backend))
    conn.send("ready")
    while (data := conn.recv()) is not None:
        conn.send(engine_only(prepared, render_pb2.RenderRequest.FromString(data)))


def run_paired(addr: str, requests, engine_conn) -> ClientResult:
    """One client, each view rendered by the engine alone and then by the service, alternately,
    so that both see the same machine load."""
    out = ClientResult()
    with grpc.insecure_channel(addr, options=CHANNEL_OPTIONS) as channel:
        stub = render_pb2_grpc.RenderServiceStub(channel)
        for req in requests:
            engine_conn.send(req.SerializeToString())
            engine_ms = engine_conn.recv()
            sample = stream_one(stub, req)
            sample.engine_ms = engine_ms
            out.samples.append(sample)
    return out


def run_concurrent(addr: str, requests_of_client: list) -> ClientResult:
    results = [ClientResult() for _ in requests_of_client]
    barrier = threading.Barrier(len(results))
    threads = [
        threading.Thread(target=run_client, args=(addr, reqs, out, barrier))
        for reqs, out in zip(requests_of_client, results, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ClientResult(
        samples=[s for r in results for s in r.samples], errors=[e for r in results for e in r.errors]
    )


def main() -> None:
    from voxcast.catalog.client import CatalogClient
    from voxcast.catalog.server import create_server as create_catalog

    from voxcast.demo import write_demo_study

    size = os.environ.get("VOXCAST_BENCH_SIZE", "large")
    clients_list = [int(n) for n in os.environ.get("VOXCAST_BENCH_CLIENTS", "1,4,16").split(",")]
    sequences = [s.strip() for s in os.environ.get("VOXCAST_BENCH_SEQUENCES", ",".join(SEQUENCES)).split(",")]
    unknown = sorted(set(sequences) - set(SEQUENCES))
    if unknown:
        known = ", ".join(SEQUENCES)
        raise SystemExit(f"VOXCAST_BENCH_SEQUENCES: unknown {', '.join(unknown)}; known: {known}")
    count = int(os.environ.get("VOXCAST_BENCH_VIEWS", "12"))
    from voxcast.render.engine.backends import resolve_name

    with tempfile.TemporaryDirectory(prefix="voxcast-bench-service-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        backend = resolve_name(settings.backend)
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
            port, warmup_s = ports.get(timeout=600)
            addr = f"127.0.0.1:{port}"
            print(f"render service ready: backend warm-up {warmup_s:.1f} s", flush=True)
            with grpc.insecure_channel(addr, options=CHANNEL_OPTIONS) as channel:
                stub = render_pb2_grpc.RenderServiceStub(channel)
                t0 = time.perf_counter()
                stub.Preload(render_pb2.PreloadRequest(series_uid=study.ct_series_uid), timeout=600)
                print(
                    f"render service preload (fetch + prepare) {time.perf_counter() - t0:.1f} s", flush=True
                )
                for sequence in sequences:  # warm up (caches, connections)
                    for req in view_requests(study.ct, sequence, 0, 2):
                        req.series_uid = study.ct_series_uid
                        list(stub.Render(req, timeout=600))

            engine_conn, child_conn = ctx.Pipe()
            engine_child = ctx.Process(
                target=_engine_worker,
                args=(child_conn, settings.model_dump_json(), catalog_addr, study.ct_series_uid),
            )
            engine_child.start()
            assert engine_conn.recv() == "ready"
            rows = []
            for sequence in sequences:
                for req in view_requests(study.ct, sequence, 0, 2):  # warm up the engine process
                    req.series_uid = study.ct_series_uid
                    engine_conn.send(req.SerializeToString())
                    engine_conn.recv()
                for n in clients_list:
                    requests = [view_requests(study.ct, sequence, c, count) for c in range(n)]
                    for reqs in requests:
                        for req in reqs:
                            req.series_uid = study.ct_series_uid
                    t0 = time.perf_counter()
                    if n == 1:
                        result = run_paired(addr, requests[0], engine_conn)
                    else:
                        result = run_concurrent(addr, requests)
                    wall = time.perf_counter() - t0
                    if n == 1:  # the engine-only renders between the requests are not service time
                        busy = sum(s.full_ms for s in result.samples) / 1e3
                    else:
                        busy = wall
                    rows.append((sequence, n, result, len(result.samples) / busy))
                    print(f"  {sequence} x{n}: {len(result.samples)} views in {wall:.1f} s", flush=True)
            engine_conn.send(None)
            engine_child.join(60)
        finally:
            child.terminate()
            child.join(30)
            client.close()
            catalog.stop(0)

    print(
        f"\nrender service, demo {size} CT {study.ct.shape}, backend {backend}, 512x512 frames, "
        f"{count} views per client, {os.cpu_count()} CPUs"
    )
    header = ("sequence", "clients", "preview p50", "preview p95", "full p50", "full p95", "fps",
              "server render p50", "encode p50", "non-render p50", "engine-only p50", "overhead",
              "errors")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for sequence, n, result, fps in rows:
        samples = result.samples
        preview = [s.preview_ms for s in samples]
        full = [s.full_ms for s in samples]
        server = [s.server_render_ms for s in samples]
        encode = [s.server_encode_ms for s in samples]
        non_render = [s.full_ms - s.server_render_ms for s in samples]
        paired = [s for s in samples if s.engine_ms == s.engine_ms]
        engine_p50 = f"{statistics.median(s.engine_ms for s in paired):.1f}" if paired else "-"
        overhead = (
            f"{statistics.median((s.full_ms - s.engine_ms) / s.engine_ms for s in paired):+.0%}"
            if paired
            else "-"
        )
        print(
            f"| {sequence} | {n} | {_percentile(preview, 50):.1f} | {_percentile(preview, 95):.1f} | "
            f"{_percentile(full, 50):.1f} | {_percentile(full, 95):.1f} | {fps:.1f} | "
            f"{_percentile(server, 50):.1f} | {_percentile(encode, 50):.1f} | "
            f"{_percentile(non_render, 50):.1f} | {engine_p50} | {overhead} | {len(result.errors)} |"
        )
    print(
        "ms from sending the request. fps: full frames per second, all clients together. server render: "
        "preview + full render time the frames report, encode likewise; non-render: time to full "
        "frame minus server render (encoding, queueing, transport). engine-only: the same two "
        "renders in a process of their own without the service, alternating view by view with the "
        "service requests (one client). "
        "overhead: median over views of (time to full frame - engine-only) / engine-only."
    )


if __name__ == "__main__":
    main()
