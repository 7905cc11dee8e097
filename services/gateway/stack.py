"""`voxcast up`: catalog, render and gateway on one machine.

The catalog and the render service run as child processes (each its own Python, so rendering never
holds the gateway's interpreter), bound to loopback on free ports; the gateway runs in this process.
With --demo the synthetic PET/CT study is written under VOXCAST_HOME/demo and ingested."""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from voxcast.config import Settings
from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import catalog_pb2, catalog_pb2_grpc

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 120.0
FIRST_ADMIN = "admin"
PARENT_CHECK_S = 1.0


def _child_main(kind: str, settings: Settings, catalog_addr: str, conn, parent_pid: int) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format=f"%(asctime)s %(levelname)s {kind} %(name)s: %(message)s"
    )
    if kind == "catalog":
        from voxcast.catalog.server import create_server

        server, port = create_server(settings, 0, host=LOOPBACK)
    else:
        from voxcast.render.server import create_server

        server, port = create_server(settings, 0, catalog_addr, host=LOOPBACK)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    conn.send(port)
    conn.close()
    # Never outlive `voxcast up`, even when it is killed without a chance to stop us.
    while not stop.wait(PARENT_CHECK_S):
        if os.getppid() != parent_pid:
            break
    server.stop(2.0)


@dataclass
class Child:
    name: str
    process: multiprocessing.Process
    addr: str


def start_child(kind: str, settings: Settings, catalog_addr: str = "") -> Child:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child_main, args=(kind, settings, catalog_addr, child, os.getpid()), name=f"voxcast-{kind}"
    )
    process.start()
    child.close()
    if not parent.poll(START_TIMEOUT_S):
        process.terminate()
        raise RuntimeError(f"the {kind} service did not start in {START_TIMEOUT_S:.0f} s")
    try:
        port = parent.recv()
    except EOFError:
        process.join(5)
        raise RuntimeError(f"the {kind} service failed to start (exit code {process.exitcode})") from None
    return Child(kind, process, f"{LOOPBACK}:{port}")


def stop_children(children: list[Child]) -> None:
    for c in children:
        if c.process.is_alive():
            c.process.terminate()
    for c in children:
        c.process.join(10)
        if c.process.is_alive():
            c.process.kill()


def ingest_files(catalog_addr: str, paths: list[Path]) -> dict[str, int]:
    """Send files to the catalog's Ingest stream; counts of results by status."""

    def requests():
        for path in paths:
            yield catalog_pb2.IngestRequest(name=str(path), data=path.read_bytes(), end_of_file=True)

    with grpc.insecure_channel(catalog_addr, options=CHANNEL_OPTIONS) as channel:
        reply = catalog_pb2_grpc.CatalogServiceStub(channel).Ingest(requests())
    counts: dict[str, int] = {}
    for r in reply.results:
        name = catalog_pb2.IngestResult.Status.Name(r.status).lower()
        counts[name] = counts.get(name, 0) + 1
    return counts


def import_demo(settings: Settings, catalog_addr: str, size: str):
    from voxcast.demo import write_demo_study

    out = settings.home / "demo" / size
    study = write_demo_study(out, size=size)
    counts = ingest_files(catalog_addr, sorted(p for p in out.rglob("*.dcm")))
    log.info("demo study %s: %s", study.study_uid, counts)
    return study


def ensure_first_admin(settings: Settings) -> str | None:
    """Create the first admin when there is no user at all; its new password, else None."""
    from voxcast.gateway.auth.store import Role, Store

    store = Store.from_settings(settings)
    if store.has_users():
        return None
    password = secrets.token_urlsafe(12)
    store.add_user(FIRST_ADMIN, password, Role.ADMIN)
    return password


def run_up(
    settings: Settings, *, port: int, host: str, demo: bool, demo_size: str, open_loopback: bool
) -> int:
    import uvicorn
    from voxcast.gateway.app import create_app, server_config

    if open_loopback and host not in (LOOPBACK, "localhost", "::1"):
        raise ValueError("--open-loopback runs without sign-in and so listens on 127.0.0.1 only")
    settings.home.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    try:
        catalog = start_child("catalog", settings)
        children.append(catalog)
        render = start_child("render", settings, catalog.addr)
        children.append(render)
        gateway_settings = settings.model_copy(
            update={"catalog_addr": catalog.addr, "render_addrs": render.addr}
        )
        study = import_demo(settings, catalog.addr, demo_size) if demo else None
        password = None if open_loopback else ensure_first_admin(settings)
        shown = LOOPBACK if host in ("0.0.0.0", "::") else host
        lines = [f"voxcast is up: http://{shown}:{port}/"]
        if study is not None:
            lines.append(
                f"  demo study {study.study_uid} (CT {study.ct_series_uid}, PET {study.pet_series_uid})"
            )
        if open_loopback:
            lines.append("  open access on loopback: no sign-in")
        elif password:
            lines.append(f"  first admin: username {FIRST_ADMIN}  password {password}")
        else:
            lines.append("  sign in with an existing account (`voxcast user add` creates one)")
        print("\n".join(lines), flush=True)
        app = create_app(gateway_settings, open_access=open_loopback)
        # uvicorn re-raises SIGTERM once it has shut down; exiting through SystemExit lets the
        # `finally` below stop the catalog and render processes.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.Server(server_config(app, host=host, port=port, log_level=settings.log_level.lower())).run()
    finally:
        stop_children(children)
    return 0
