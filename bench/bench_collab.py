"""Shared-session fan-out over two session-bus instances on one real Redis (two gateway replicas).

One presenter on replica A changes a viewport's state at a steady drag rate (an MPR plane moving
through the demo CT); 1, 10 and 50 viewers are spread over replicas A and B. Each viewer reads its
events (Participant.receive) and its frames (Participant.frames, the latest-wins slot) as fast as it
can. Printed per number of viewers:
- events/s each viewer receives and the delay from the presenter's change to the viewer getting
  the event (p50/p95 over all viewers);
- frames/s each viewer receives and the delay from the change to the viewer getting a frame of it
  (any rung);
- renders started by each replica (one per view state it saw, whatever its number of viewers) and
  the render service's own count of full-resolution frames in the same run.

Two renderers (VOXCAST_BENCH_RENDER): `service` (default) is a real render service in a child
process (`voxcast serve render`, gRPC on loopback, the small demo PET/CT study in a real catalog,
backend VOXCAST_BACKEND, default numpy), called through collab.rendering.grpc_renderer; `standin`
yields three frames per view state over VOXCAST_BENCH_RENDER_MS (default 8) ms, to measure the
session layer alone. Measured at the library level (SessionHub + RedisBus + ViewportFeed +
LatestFrames), without the gateway's WebSocket: both replicas and all viewers share this process.

Environment: VOXCAST_BENCH_VIEWERS (default 1,10,50), VOXCAST_BENCH_RATE (changes/s, default 30),
VOXCAST_BENCH_SECONDS (default 4), VOXCAST_BENCH_FRAME (frame side in pixels, default 256),
VOXCAST_BENCH_POINTER_HZ (each viewer also moves its laser pointer this often; default 0),
VOXCAST_REDIS_URL (default: start a redis-server on a free port, else 127.0.0.1:6379).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import numpy as np
from voxcast.gateway.collab import Identity, SessionHub
from voxcast.gateway.collab.fanout import FrameCodec
from voxcast.gateway.collab.redis_bus import RedisBus
from voxcast.gateway.collab.rendering import FRAME_CODEC, grpc_renderer

from voxcast.config import Settings

SECRET = "bench-collab-secret-key-of-32-bytes!!"


@contextmanager
def redis_server():
    url = os.environ.get("VOXCAST_REDIS_URL")
    binary = shutil.which("redis-server")
    if url or binary is None:
        yield url or "redis://127.0.0.1:6379/0"
        return
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


# Frames as the bench's renderer yields them: (drag step, render_pb2.Frame).
NUMBERED_FRAME_CODEC = FrameCodec(
    encode=lambda item: item[0].to_bytes(8, "big") + FRAME_CODEC.encode(item[1]),
    decode=lambda data: (int.from_bytes(data[:8], "big"), FRAME_CODEC.decode(data[8:])),
)


class StandIn:
    """A three-rung ladder per view state taking a fixed time: the session layer without a render
    service."""

    codec = None

    def __init__(self, render_ms: float) -> None:
        self.render_ms = render_ms
        self.study_uid, self.series_uid, self.center = "1.2.3", "1.2.3.4", (0.0, 0.0, 0.0)

    def renderer(self):
        async def render(session_id: str, viewport_id: str, state: dict):
            # The ladder's three rungs: a quick preview, the full frame, then its lossless encoding.
            for share in (0.25, 0.75, 0.0):
                await asyncio.sleep(share * self.render_ms / 1000)
                yield b"\0" * 1024

        return render

    def rendered(self) -> float:
        return float("nan")

    async def aclose(self) -> None:
        pass


class RenderService:
    """A real render service in a child process (`voxcast serve render`, as deployed), over a real
    catalog holding the small demo PET/CT study; its frame count read from its Prometheus metrics."""

    codec = NUMBERED_FRAME_CODEC

    def __init__(self, home: str) -> None:
        from voxcast.catalog.client import CatalogClient
        from voxcast.catalog.server import create_server as create_catalog

        from voxcast.demo import write_demo_study

        self.backend = os.environ.get("VOXCAST_BACKEND", "numpy")
        settings = Settings(home=home, backend=self.backend, metrics_port=0)
        demo = write_demo_study(os.path.join(home, "demo"), size="small")
        self.catalog, catalog_port = create_catalog(settings, 0, host="127.0.0.1")
        self.catalog.start()
        catalog_addr = f"127.0.0.1:{catalog_port}"
        with CatalogClient(catalog_addr) as client:
            client.ingest([str(p) for p in demo.ct_paths + demo.pet_paths])
        port, self.metrics_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "VOXCAST_HOME": home,
            "VOXCAST_BACKEND": self.backend,
            "VOXCAST_LOG_LEVEL": "WARNING",
        }
        args = ["serve", "render", "--port", str(port), "--catalog", catalog_addr]
        args += ["--metrics-port", str(self.metrics_port)]
        self.proc = subprocess.Popen([sys.executable, "-m", "voxcast.cli", *args], env=env)
        self.addr = f"127.0.0.1:{port}"
        _wait_for_port(port, self.proc)
        _wait_for_port(self.metrics_port, self.proc)
        self.study_uid, self.series_uid = demo.study_uid, demo.ct_series_uid
        self.center = tuple(float(c) for c in demo.ct.center)
        self._channels = []

    def renderer(self):
        import grpc

        from voxcast.grpcio import CHANNEL_OPTIONS
        from voxcast.v1 import render_pb2_grpc

        channel = grpc.aio.insecure_channel(self.addr, options=CHANNEL_OPTIONS)
        self._channels.append(channel)
        return grpc_renderer(render_pb2_grpc.RenderServiceStub(channel))

    def rendered(self) -> float:
        """Full-resolution frames the render service has rendered (coalesced requests count once)."""
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "voxcast_render_frames_total" and sample.labels.get("rung") == "full"
        )

    async def aclose(self) -> None:
        for channel in self._channels:
            await channel.close()
        self._channels.clear()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.catalog.stop(0).wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on port {port}") from None
            time.sleep(0.05)


def view(source, n: int, size: int) -> dict:
    """The n-th state of the drag: the axial plane moving 0.5 mm per step, back and forth."""
    offset = ((n % 80) - 40) * 0.5
    cx, cy, cz = source.center
    plane = {"center": [cx, cy, cz + offset], "right": [1, 0, 0], "down": [0, 1, 0]}
    return {
        "series_uid": source.series_uid,
        "plane": plane,
        "window_center": n,
        "window_width": 400,
        "width": size,
        "height": size,
    }


def numbered(render):
    """Tag each frame with the drag step whose view it shows (the window centre carries it)."""

    async def wrapped(session_id: str, viewport_id: str, state: dict):
        async for frame in render(session_id, viewport_id, state):
            yield int(state["window_center"]), frame

    return wrapped


async def one_run(
    url: str, source, viewers: int, rate: float, seconds: float, size: int, pointer_hz: float
) -> dict:
    hubs = [
        SessionHub(
            RedisBus(url),
            SECRET,
            renderer=numbered(source.renderer()),
            frame_codec=source.codec,
            outbox_limit=1024,
        )
        for _ in range(2)
    ]
    owner = Identity.user("presenter", "Presenter")
    sid = await hubs[0].create_session(owner, source.study_uid, [source.series_uid])
    presenter = await hubs[0].join(sid, owner)
    token = await presenter.invite("user")
    people = []
    for i in range(viewers):
        hub = hubs[i % 2]
        who = Identity.user(f"viewer{i}", f"Viewer {i}")
        people.append(await hub.join(sid, who, await hub.redeem(token, user=who)))
    sent: dict[int, float] = {}
    event_delays, frame_delays = [], []
    event_counts, frame_counts = [0] * viewers, [0] * viewers
    measuring = {"on": False}

    async def read_events(k, p):
        while True:
            message = await p.receive()
            if message["type"] == "viewport" and measuring["on"]:
                n = int(message["state"]["window_center"])
                event_delays.append(time.perf_counter() - sent[n])
                event_counts[k] += 1

    async def read_frames(k, p):
        while True:
            _, (n, _frame) = await p.frames.get()
            if measuring["on"] and n in sent:
                frame_delays.append(time.perf_counter() - sent[n])
                frame_counts[k] += 1

    async def drain_presenter():
        while True:
            await presenter.receive()

    async def move_pointer(k, p):
        i = 0
        while True:
            await asyncio.sleep(1.0 / pointer_hz)
            i += 1
            await p.send({"type": "pointer", "viewport_id": "ax", "point": [k, i % 100, 0]})

    tasks = [asyncio.create_task(read_events(k, p)) for k, p in enumerate(people)]
    tasks += [asyncio.create_task(read_frames(k, p)) for k, p in enumerate(people)]
    tasks.append(asyncio.create_task(drain_presenter()))
    if pointer_hz > 0:
        tasks += [asyncio.create_task(move_pointer(k, p)) for k, p in enumerate(people)]
    await presenter.send({"type": "viewport", "viewport_id": "ax", "state": view(source, 0, size)})
    await asyncio.sleep(2.0)  # warm up: subscriptions, scripts loaded, volumes cached, first render
    renders_before = [hub.renders(sid) for hub in hubs]
    rendered_before = source.rendered()
    measuring["on"] = True
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        n += 1
        sent[n] = time.perf_counter()
        await presenter.send({"type": "viewport", "viewport_id": "ax", "state": view(source, n, size)})
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.5)  # let the last changes arrive
    measuring["on"] = False
    renders = [hub.renders(sid) - before for hub, before in zip(hubs, renders_before, strict=True)]
    rendered = source.rendered() - rendered_before
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for hub in hubs:
        await hub.close()
        await hub.bus.close()
    await source.aclose()
    ms = lambda xs, q: float(np.percentile(xs, q) * 1000) if xs else float("nan")  # noqa: E731
    return {
        "viewers": viewers,
        "changes": n,
        "change_rate": n / elapsed,
        "events_s": np.array(event_counts) / elapsed,
        "event_p50": ms(event_delays, 50),
        "event_p95": ms(event_delays, 95),
        "frames_s": np.array(frame_counts) / elapsed,
        "frame_p50": ms(frame_delays, 50),
        "frame_p95": ms(frame_delays, 95),
        "renders": renders,
        "rendered": rendered,
    }


def main() -> None:
    viewer_counts = [int(v) for v in os.environ.get("VOXCAST_BENCH_VIEWERS", "1,10,50").split(",")]
    rate = float(os.environ.get("VOXCAST_BENCH_RATE", "30"))
    seconds = float(os.environ.get("VOXCAST_BENCH_SECONDS", "4"))
    size = int(os.environ.get("VOXCAST_BENCH_FRAME", "256"))
    kind = os.environ.get("VOXCAST_BENCH_RENDER", "service")
    pointer_hz = float(os.environ.get("VOXCAST_BENCH_POINTER_HZ", "0"))
    with tempfile.TemporaryDirectory(prefix="voxcast-bench-collab-") as home, redis_server() as url:
        if kind == "service":
            source = RenderService(home)
            what = f"render service in a child process (backend {source.backend}, small demo CT)"
        elif kind == "standin":
            render_ms = float(os.environ.get("VOXCAST_BENCH_RENDER_MS", "8"))
            source = StandIn(render_ms)
            what = f"stand-in render of {render_ms:g} ms per view state"
        else:
            raise SystemExit(f"VOXCAST_BENCH_RENDER must be service or standin, not {kind!r}")
        print(
            f"\n## collab fan-out: presenter at {rate:g} changes/s for {seconds:g} s, {size}x{size} frames,"
        )
        pointers = f", every viewer moving its pointer at {pointer_hz:g} Hz" if pointer_hz > 0 else ""
        print(f"## 2 replicas on one Redis, {what}{pointers}; library level (no WebSocket)\n")
        print(
            "| viewers | changes/s sent | events/s per viewer (min) | event delay p50 / p95 ms "
            "| frames/s per viewer (min) | frame delay p50 / p95 ms | renders A / B | render service frames |"
        )
        print("|---|---|---|---|---|---|---|---|")
        results = []
        try:
            for count in viewer_counts:
                r = asyncio.run(one_run(url, source, count, rate, seconds, size, pointer_hz))
                results.append(r)
                events, frames = r["events_s"], r["frames_s"]
                print(
                    f"| {count} | {r['change_rate']:.1f} | {events.mean():.1f} ({events.min():.1f}) "
                    f"| {r['event_p50']:.1f} / {r['event_p95']:.1f} "
                    f"| {frames.mean():.1f} ({frames.min():.1f}) "
                    f"| {r['frame_p50']:.1f} / {r['frame_p95']:.1f} "
                    f"| {r['renders'][0]} / {r['renders'][1]} | {r['rendered']:.0f} |",
                    flush=True,
                )
        finally:
            if isinstance(source, RenderService):
                source.stop()
    base = results[0]["frames_s"].mean()
    for r in results[1:]:
        share = r["frames_s"].mean() / base if base else float("nan")
        print(f"{r['viewers']} viewers get {share:.0%} of the {results[0]['viewers']}-viewer frame rate")


if __name__ == "__main__":
    main()
