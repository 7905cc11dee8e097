"""End to end through the gateway's WebSocket: 1 and 8 simultaneous viewers on the demo CT, each
with its own connection and a 512x512 viewport, against real catalog, render and gateway processes.

Per sequence (MPR scroll, 3D rotation) and number of viewers:
- step: one view change at a time; time from sending it to the first frame of that view (preview),
  to its full frame and to its lossless frame (p50/p95);
- drag: view changes at 60 Hz for a few seconds, as a mouse drag sends them; frames per second
  each viewer receives (mean over viewers) and the share of changes that were rendered (the rest
  were dropped as stale: latest wins);
- the render service's own time for the same frames (render + encode, from the frame headers),
  so the gateway's share is the difference.

Environment: VOXCAST_BENCH_SIZE (demo size, default medium), VOXCAST_BENCH_VIEWERS (default 1,8),
VOXCAST_BENCH_STEPS (default 12), VOXCAST_BENCH_DRAG_S (default 3), VOXCAST_BACKEND.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

from voxcast.config import Settings
from voxcast.testing import free_port

PASSWORD = "bench-password-1"
SIZE = 512
SEQUENCES = {
    "mpr-scroll": (
        {"mode": "mpr", "orientation": "axial"},
        lambda i: {"scroll": 1 if (i // 20) % 2 == 0 else -1},
    ),
    "3d-rotate": ({"mode": "vr", "orientation": "coronal"}, lambda i: {"rotate": {"dx": 3.0, "dy": 0.0}}),
}


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


@dataclass
class ViewerClient:
    ws: object
    frames: list = field(default_factory=list)  # (arrival time, header)
    events: list = field(default_factory=list)
    waiters: list = field(default_factory=list)  # (predicate, future)

    async def reader(self) -> None:
        async for message in self.ws:
            now = time.perf_counter()
            if isinstance(message, bytes):
                (n,) = struct.unpack(">I", message[:4])
                item = ("frame", json.loads(message[4 : 4 + n]))
                self.frames.append((now, item[1]))
            else:
                item = ("event", json.loads(message))
                self.events.append(item[1])
            for predicate, future in list(self.waiters):
                if not future.done() and predicate(item):
                    future.set_result((now, item[1]))

    def wait(self, predicate) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        return future

    async def send(self, **message) -> float:
        await self.ws.send(json.dumps(message))
        return time.perf_counter()


class Services:
    """Catalog and render in child processes (voxcast.gateway.stack), the gateway in a third."""

    def __init__(self, home: Path, size: str) -> None:
        from voxcast.gateway.auth.store import Store
        from voxcast.gateway.stack import import_demo, start_child

        self.settings = Settings(home=home, metrics_port=0)
        self.catalog = start_child("catalog", self.settings)
        self.render = start_child("render", self.settings, self.catalog.addr)
        self.study = import_demo(self.settings, self.catalog.addr, size)
        Store.from_settings(self.settings).add_user("bench", PASSWORD, "clinician")
        port = free_port()
        env = {
            **os.environ,
            "VOXCAST_HOME": str(home),
            "VOXCAST_CATALOG_ADDR": self.catalog.addr,
            "VOXCAST_RENDER_ADDRS": self.render.addr,
            "VOXCAST_LOG_LEVEL": "WARNING",
        }
        self.gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voxcast.cli",
                "serve",
                "gateway",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.2)
        r = httpx.post(self.url + "/api/auth/login", json={"username": "bench", "password": PASSWORD})
        self.token = r.json()["access_token"]

    def close(self) -> None:
        from voxcast.gateway.stack import stop_children

        self.gateway.terminate()
        self.gateway.wait(10)
        stop_children([self.render, self.catalog])


async def connect(services: Services, n: int, opening: dict) -> tuple[list[ViewerClient], list[asyncio.Task]]:
    clients, tasks = [], []
    for i in range(n):
        ws = await websockets.connect(
            services.url.replace("http", "ws") + "/ws?token=" + services.token, max_size=1 << 26
        )
        client = ViewerClient(ws)
        tasks.append(asyncio.create_task(client.reader()))
        ready = client.wait(lambda item: item[0] == "event" and item[1]["type"] == "ready")
        await ready
        done = client.wait(lambda item: item[0] == "frame" and item[1]["rung"] == "lossless")
        await client.send(
            type="open", viewport="v", series_uid=services.study.ct_series_uid, size=[SIZE, SIZE], **opening
        )
        await asyncio.wait_for(done, 120)
        # Viewers start at different places, as different people would (identical views coalesce).
        await client.send(type="view", viewport="v", scroll=(i * 3) % 7 - 3, rotate={"dx": i * 11.0, "dy": 0})
        clients.append(client)
    await asyncio.sleep(0.5 * n)  # let those views settle
    return clients, tasks


def frame_of(version: int, rungs: tuple[str, ...] = ("preview", "full", "lossless")):
    return lambda item: item[0] == "frame" and item[1]["version"] >= version and item[1]["rung"] in rungs


async def step_test(clients: list[ViewerClient], change, steps: int) -> dict:
    preview, full, lossless = [], [], []

    async def one(client: ViewerClient, k: int) -> None:
        for s in range(steps):
            version = client.events and max(
                (e["state"]["version"] for e in client.events if e["type"] in ("state", "opened")), default=0
            )
            target = version + 1
            first = client.wait(frame_of(target))
            got_full = client.wait(frame_of(target, ("full", "lossless")))
            got_lossless = client.wait(frame_of(target, ("lossless",)))
            state = client.wait(lambda item: item[0] == "event" and item[1]["type"] == "state")
            sent = await client.send(type="view", viewport="v", **change(s))
            await asyncio.wait_for(state, 60)
            t1, _ = await asyncio.wait_for(first, 60)
            t2, _ = await asyncio.wait_for(got_full, 60)
            t3, _ = await asyncio.wait_for(got_lossless, 60)
            preview.append((t1 - sent) * 1000)
            full.append((t2 - sent) * 1000)
            lossless.append((t3 - sent) * 1000)

    await asyncio.gather(*(one(c, k) for k, c in enumerate(clients)))
    return {"preview": preview, "full": full, "lossless": lossless}


async def drag_test(clients: list[ViewerClient], change, seconds: float) -> dict:
    marks = [len(c.frames) for c in clients]
    sent_counts = [0] * len(clients)
    start = time.perf_counter()

    async def drag(k: int, client: ViewerClient) -> None:
        i = 0
        while time.perf_counter() - start < seconds:
            await client.send(type="view", viewport="v", **change(i))
            sent_counts[k] += 1
            i += 1
            await asyncio.sleep(1 / 60)

    await asyncio.gather(*(drag(k, c) for k, c in enumerate(clients)))
    elapsed = time.perf_counter() - start
    fps, rendered_share = [], []
    for k, c in enumerate(clients):
        during = [h for t, h in c.frames[marks[k] :] if t - start <= elapsed]
        fps.append(len(during) / elapsed)
        rendered_share.append(len({h["version"] for h in during}) / max(1, sent_counts[k]))
    await asyncio.sleep(1.0)
    return {"fps": fps, "rendered": rendered_share}


def render_times(clients: list[ViewerClient], rung: str) -> list[float]:
    return [
        h["timings"]["render_ms"] + h["timings"]["encode_ms"]
        for c in clients
        for _, h in c.frames
        if h["rung"] == rung
    ]


async def run_case(services: Services, sequence: str, viewers: int, steps: int, drag_s: float) -> dict:
    opening, change = SEQUENCES[sequence]
    clients, tasks = await connect(services, viewers, opening)
    for c in clients:
        c.frames.clear()
    step = await step_test(clients, change, steps)
    service_preview, service_full = render_times(clients, "preview"), render_times(clients, "full")
    drag = await drag_test(clients, change, drag_s)
    for c in clients:
        await c.ws.close()
    for t in tasks:
        t.cancel()
    return {"step": step, "drag": drag, "service_preview": service_preview, "service_full": service_full}


def main() -> None:
    size = os.environ.get("VOXCAST_BENCH_SIZE", "medium")
    viewer_counts = [int(v) for v in os.environ.get("VOXCAST_BENCH_VIEWERS", "1,8").split(",")]
    steps = int(os.environ.get("VOXCAST_BENCH_STEPS", "12"))
    drag_s = float(os.environ.get("VOXCAST_BENCH_DRAG_S", "3"))
    with tempfile.TemporaryDirectory(prefix="voxcast-bench-gateway-") as home:
        services = Services(Path(home), size)
        try:
            shape = "x".join(str(n) for n in services.study.ct.shape)
            print(
                f"\n## gateway WebSocket end to end (demo {size}, CT {shape}, {SIZE}x{SIZE} viewports, "
                f"backend {os.environ.get('VOXCAST_BACKEND', 'auto')}, {os.cpu_count()} CPUs)\n"
            )
            print(
                "| sequence | viewers | to preview p50/p95 ms | to full p50/p95 ms | to lossless p50 ms "
                "| render+encode preview / full p50 ms | drag fps per viewer | drag changes rendered |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for sequence in SEQUENCES:
                for viewers in viewer_counts:
                    r = asyncio.run(run_case(services, sequence, viewers, steps, drag_s))
                    s, d = r["step"], r["drag"]
                    print(
                        f"| {sequence} | {viewers} "
                        f"| {pct(s['preview'], 50):.0f} / {pct(s['preview'], 95):.0f} "
                        f"| {pct(s['full'], 50):.0f} / {pct(s['full'], 95):.0f} "
                        f"| {pct(s['lossless'], 50):.0f} "
                        f"| {pct(r['service_preview'], 50):.1f} / {pct(r['service_full'], 50):.1f} "
                        f"| {np.mean(d['fps']):.1f} | {100 * np.mean(d['rendered']):.0f}% |",
                        flush=True,
                    )
        finally:
            services.close()


if __name__ == "__main__":
    main()
