"""Shared-session fan-out through the gateways, as deployed: one Redis, a catalog with the demo CT,
a render service and two gateway processes (`voxcast serve ...`, all on loopback; bench.collab_stack).

A presenter on gateway A drags the axial plane through the CT at a fixed rate for a fixed time
(session.viewport over /ws/session); 1, 10 and 50 viewers, spread over gateways B and A in turn,
each join with an invitation (session.invite) and read their WebSocket as fast as they can. Frame
headers say which rung a frame is but not which view state, so each drag step also nudges the
plane's pixel size (1 mm + step x 0.1 um), which every frame's header echoes (x2 on a preview).
Printed per number of viewers:
- frames/s each viewer receives, every rung (mean over viewers, and the slowest viewer), and the
  view states/s of which it got at least one frame (latest wins: a newer state may skip an older);
- delay from the presenter sending a view state to each viewer's first frame of it (p50/p95
  over all viewers and states);
- frames the render service rendered in the same run (voxcast_render_frames_total, every rung,
  from its Prometheus endpoint): one viewer's worth, whatever the number of viewers;
- CPU each process used over the drag (cores busy on average): the render service, gateways A and
  B, and this process, where all the viewers' and the presenter's WebSockets are read.
and then, for each row after the first, its share of the first row's frame rate (target for 50
viewers against 1: at least 80%) and of its render service frames (target: 1.00x).

Environment: VOXCAST_BENCH_VIEWERS (default 1,10,50), VOXCAST_BENCH_RATE (changes/s, default 20),
VOXCAST_BENCH_SECONDS (drag time per row, default 6), VOXCAST_BENCH_FRAME (frame side in pixels,
default 256), VOXCAST_BENCH_STUDY (demo study size: small or medium, default small),
VOXCAST_BACKEND (render backend, default numba), VOXCAST_REDIS_URL (default: the Redis on
127.0.0.1:6379, else one started on a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import websockets

from bench.collab_stack import Stack, collab_stack, cpu_seconds

BASE_PIXEL_MM = 1.0
PIXEL_STEP_MM = 1e-4  # per drag step; a run of up to 10,000 steps stays within 1-2 mm pixels
MAX_VIEWERS = 200
RUN_TIMEOUT_S = 180.0  # one row, joining and tearing down included
WARM_UP_TIMEOUT_S = 60.0


def view(stack: Stack, n: int, size: int) -> dict:
    """The n-th state of the drag: the axial plane moving 0.5 mm per step, back and forth."""
    offset = ((n % 80) - 40) * 0.5
    cx, cy, cz = stack.center
    plane = {
        "center": [cx, cy, cz + offset],
        "right": [1, 0, 0],
        "down": [0, 1, 0],
        "pixel_mm": BASE_PIXEL_MM + n * PIXEL_STEP_MM,
    }
    return {
        "series_uid": stack.series_uid,
        "plane": plane,
        "window_center": 40,
        "window_width": 400,
        "width": size,
        "height": size,
    }


def step_of(header: dict) -> int:
    """The drag step a frame shows, from the pixel size its header carries."""
    scale = 2.0 if header["rung"] == "preview" else 1.0
    return round((header["pixel_mm"] / scale - BASE_PIXEL_MM) / PIXEL_STEP_MM)


@dataclass
class Client:
    ws: object
    frames: int = 0  # frames received while measuring
    first: dict[int, float] = field(default_factory=dict)  # drag step -> first frame of it
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    measuring: bool = False

    async def read(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes):
                (n,) = struct.unpack(">I", message[:4])
                step = step_of(json.loads(message[4 : 4 + n]))
                self.first.setdefault(step, time.perf_counter())
                self.frames += self.measuring
            else:
                event = json.loads(message)
                if event["type"] in ("session.invitation", "session.state", "session.error"):
                    self.events.put_nowait(event)

    async def event(self, kind: str) -> dict:
        while True:
            event = await asyncio.wait_for(self.events.get(), 30)
            if event["type"] == "session.error":
                raise RuntimeError(f"session error: {event}")
            if event["type"] == kind:
                return event

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))


def ws_url(gateway: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return gateway.replace("http://", "ws://") + "/ws/session?" + query


async def one_run(
    stack: Stack, tokens: list[str], viewers: int, rate: float, seconds: float, size: int
) -> dict:
    async with contextlib.AsyncExitStack() as sockets:
        readers: list[asyncio.Task] = []

        async def connect(url: str) -> Client:
            ws = await sockets.enter_async_context(websockets.connect(url, max_size=16 * 2**20))
            client = Client(ws)
            readers.append(asyncio.create_task(client.read()))
            return client

        a = stack.gateways[0]
        presenter = await connect(ws_url(a, token=tokens[0], study=stack.study_uid))
        sid = (await presenter.event("session.state"))["state"]["session_id"]
        await presenter.send(type="session.invite", kind="user")
        invite = (await presenter.event("session.invitation"))["token"]
        people: list[Client] = []
        for k in range(viewers):  # viewer 0 on B: even one viewer crosses Redis
            gateway = stack.gateways[(k + 1) % 2]
            people.append(await connect(ws_url(gateway, token=tokens[k + 1], session=sid, invite=invite)))
        for p in people:
            await p.event("session.state")

        # Warm up: every viewer has seen a frame of the first view (volumes loaded, feeds attached).
        await presenter.send(type="session.viewport", viewport_id="ax", state=view(stack, 0, size))
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        while not all(0 in p.first for p in people):
            if time.monotonic() > deadline:
                raise RuntimeError("viewers got no frame of the first view")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)

        rendered_before = await asyncio.to_thread(stack.rendered)
        cpu_before = _cpu(stack)
        sent: dict[int, float] = {}
        for p in people:
            p.measuring = True
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            n += 1
            sent[n] = time.perf_counter()
            await presenter.send(type="session.viewport", viewport_id="ax", state=view(stack, n, size))
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        elapsed = time.perf_counter() - start
        await asyncio.sleep(1.0)  # the last views' frames
        for p in people:
            p.measuring = False
        rendered = await asyncio.to_thread(stack.rendered) - rendered_before
        window = time.perf_counter() - start
        cpu = {k: (v - cpu_before[k]) / window for k, v in _cpu(stack).items()}
        await presenter.send(type="session.end")
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    delays = [p.first[s] - t for p in people for s, t in sent.items() if s in p.first]
    ms = lambda q: float(np.percentile(delays, q) * 1000) if delays else float("nan")  # noqa: E731
    return {
        "viewers": viewers,
        "change_rate": n / elapsed,
        "frames_s": np.array([p.frames for p in people]) / elapsed,
        "views_s": np.array([sum(s in p.first for s in sent) for p in people]) / elapsed,
        "p50": ms(50),
        "p95": ms(95),
        "rendered": rendered,
        "changes": n,
        "cpu": cpu,
    }


def _cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of the render service, each gateway, and this process (the clients)."""
    return {**{k: cpu_seconds(pid) for k, pid in stack.pids.items()}, "clients": cpu_seconds()}


def _login_all(stack: Stack, count: int) -> list[str]:
    # The presenter logs in on A; viewer k on the gateway it joins (B, A, B, ...).
    return [stack.login(stack.gateways[0 if i == 0 else i % 2], stack.users[i]) for i in range(count)]


def main() -> None:
    counts = [int(v) for v in os.environ.get("VOXCAST_BENCH_VIEWERS", "1,10,50").split(",")]
    if not counts or min(counts) < 1 or max(counts) > MAX_VIEWERS:
        raise SystemExit(f"VOXCAST_BENCH_VIEWERS must list numbers of viewers from 1 to {MAX_VIEWERS}")
    rate = float(os.environ.get("VOXCAST_BENCH_RATE", "20"))
    seconds = float(os.environ.get("VOXCAST_BENCH_SECONDS", "6"))
    size = int(os.environ.get("VOXCAST_BENCH_FRAME", "256"))
    study = os.environ.get("VOXCAST_BENCH_STUDY", "small")
    backend = os.environ.get("VOXCAST_BACKEND", "numba")
    if not (0 < rate <= 100 and 0 < seconds <= 60 and 16 <= size <= 1024 and size % 2 == 0):
        raise SystemExit("need 0 < RATE <= 100, 0 < SECONDS <= 60 and an even FRAME of 16..1024 pixels")
    if study not in ("small", "medium"):
        raise SystemExit(f"VOXCAST_BENCH_STUDY must be small or medium, not {study!r}")
    with (
        tempfile.TemporaryDirectory(prefix="voxcast-bench-collab-") as home,
        collab_stack(home, max(counts) + 1, backend=backend, study=study) as stack,
    ):
        tokens = _login_all(stack, max(counts) + 1)
        print(f"\n## collab fan-out, two gateways: presenter on A at {rate:g} changes/s for {seconds:g} s,")
        print(
            f"## {size}x{size} frames (preview, full, lossless), {study} demo CT, render backend {backend}; "
            "viewers on B, A, B, ...\n"
        )
        print(
            "| viewers | changes/s sent | frames/s per viewer mean (min) | views/s per viewer "
            "| delay change -> frame p50 / p95 ms | render service frames "
            "| CPU cores: render / gateway A / gateway B / clients |"
        )
        print("|---|---|---|---|---|---|---|")
        results = []
        for count in counts:
            r = asyncio.run(
                asyncio.wait_for(one_run(stack, tokens, count, rate, seconds, size), RUN_TIMEOUT_S)
            )
            results.append(r)
            frames = r["frames_s"]
            print(
                f"| {count} | {r['change_rate']:.1f} | {frames.mean():.1f} ({frames.min():.1f}) "
                f"| {r['views_s'].mean():.1f} | {r['p50']:.0f} / {r['p95']:.0f} | {r['rendered']:.0f} "
                f"| {' / '.join(f'{c:.2f}' for c in r['cpu'].values())} |",
                flush=True,
            )
    base = results[0]
    for r in results[1:]:
        share = r["frames_s"].mean() / base["frames_s"].mean() if base["frames_s"].mean() else float("nan")
        renders = r["rendered"] / base["rendered"] if base["rendered"] else float("nan")
        print(
            f"\n{r['viewers']} viewers get {share:.0%} of the {base['viewers']}-viewer frame rate; "
            f"the render service rendered {renders:.2f}x the frames of the {base['viewers']}-viewer run"
        )


if __name__ == "__main__":
    main()
