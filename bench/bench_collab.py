"""Shared-session fan-out over two session-bus instances on one real Redis (two gateway replicas).

One presenter on replica A changes a viewport's state at a steady drag rate; 1, 10 and 50 viewers
are spread over replicas A and B. Each viewer reads its events (Participant.receive) and its frames
(Participant.frames, the latest-wins slot) as fast as it can. Printed per number of viewers:
- events/s each viewer receives and the delay from the presenter's change to the viewer getting
  the event (p50/p95 over all viewers);
- frames/s each viewer receives and the delay from the change to the viewer getting its frame;
- renders started per replica: one per view state, whatever the number of viewers.

Measured at the library level (SessionHub + RedisBus + ViewportFeed + LatestFrames), without the
WebSocket or the render service: each replica's renderer yields one frame per view state after a
fixed VOXCAST_BENCH_RENDER_MS (default 8) as a stand-in for the render call. Everything runs in one
process and event loop, so the figures include all viewers competing for one CPU core.

Environment: VOXCAST_BENCH_VIEWERS (default 1,10,50), VOXCAST_BENCH_RATE (changes/s, default 60),
VOXCAST_BENCH_SECONDS (default 3), VOXCAST_BENCH_RENDER_MS, VOXCAST_REDIS_URL (default: start a
redis-server on a free port, else 127.0.0.1:6379).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager

import numpy as np
from voxcast.gateway.collab import Identity, SessionHub
from voxcast.gateway.collab.redis_bus import RedisBus

SECRET = "bench-collab-secret-key-of-32-bytes!!"
STUDY, SERIES = "1.2.3", "1.2.3.4"


@contextmanager
def redis_server():
    url = os.environ.get("VOXCAST_REDIS_URL")
    binary = shutil.which("redis-server")
    if url or binary is None:
        yield url or "redis://127.0.0.1:6379/0"
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def renderer(render_ms: float):
    async def render(session_id: str, viewport_id: str, state: dict):
        await asyncio.sleep(render_ms / 1000)
        yield {"n": int(state["window_center"]), "data": b"\0" * 1024}

    return render


def view(n: int) -> dict:
    plane = {"center": [0, 0, n * 0.5], "right": [1, 0, 0], "down": [0, 1, 0]}
    return {"series_uid": SERIES, "plane": plane, "window_center": n, "window_width": 400}


async def one_run(url: str, viewers: int, rate: float, seconds: float, render_ms: float) -> dict:
    hubs = [
        SessionHub(RedisBus(url), SECRET, renderer=renderer(render_ms), outbox_limit=1024) for _ in range(2)
    ]
    owner = Identity.user("presenter", "Presenter")
    sid = await hubs[0].create_session(owner, STUDY, [SERIES])
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
            _, frame = await p.frames.get()
            if measuring["on"] and frame["n"] in sent:
                frame_delays.append(time.perf_counter() - sent[frame["n"]])
                frame_counts[k] += 1

    async def drain_presenter():
        while True:
            await presenter.receive()

    tasks = [asyncio.create_task(read_events(k, p)) for k, p in enumerate(people)]
    tasks += [asyncio.create_task(read_frames(k, p)) for k, p in enumerate(people)]
    tasks.append(asyncio.create_task(drain_presenter()))
    await presenter.send({"type": "viewport", "viewport_id": "ax", "state": view(0)})
    await asyncio.sleep(0.5)  # warm up: subscriptions, scripts loaded, first render
    renders_before = [hub.renders(sid) for hub in hubs]
    measuring["on"] = True
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        n += 1
        sent[n] = time.perf_counter()
        await presenter.send({"type": "viewport", "viewport_id": "ax", "state": view(n)})
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.3)  # let the last changes arrive
    measuring["on"] = False
    renders = [hub.renders(sid) - before for hub, before in zip(hubs, renders_before, strict=True)]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for hub in hubs:
        await hub.close()
        await hub.bus.close()
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
    }


def main() -> None:
    viewer_counts = [int(v) for v in os.environ.get("VOXCAST_BENCH_VIEWERS", "1,10,50").split(",")]
    rate = float(os.environ.get("VOXCAST_BENCH_RATE", "60"))
    seconds = float(os.environ.get("VOXCAST_BENCH_SECONDS", "3"))
    render_ms = float(os.environ.get("VOXCAST_BENCH_RENDER_MS", "8"))
    print(f"\n## collab fan-out: presenter at {rate:g} changes/s for {seconds:g} s, 2 replicas on one Redis,")
    print(f"## stand-in render of {render_ms:g} ms per view state (library level, no WebSocket)\n")
    print(
        "| viewers | changes/s sent | events/s per viewer (min) | event delay p50 / p95 ms "
        "| frames/s per viewer (min) | frame delay p50 / p95 ms | renders A / B |"
    )
    print("|---|---|---|---|---|---|---|")
    with redis_server() as url:
        results = []
        for count in viewer_counts:
            r = asyncio.run(one_run(url, count, rate, seconds, render_ms))
            results.append(r)
            events, frames = r["events_s"], r["frames_s"]
            print(
                f"| {count} | {r['change_rate']:.1f} | {events.mean():.1f} ({events.min():.1f}) "
                f"| {r['event_p50']:.1f} / {r['event_p95']:.1f} "
                f"| {frames.mean():.1f} ({frames.min():.1f}) "
                f"| {r['frame_p50']:.1f} / {r['frame_p95']:.1f} | {r['renders'][0]} / {r['renders'][1]} |",
                flush=True,
            )
    base = results[0]["frames_s"].mean()
    for r in results[1:]:
        share = r["frames_s"].mean() / base if base else float("nan")
        print(f"{r['viewers']} viewers get {share:.0%} of the {results[0]['viewers']}-viewer frame rate")


if __name__ == "__main__":
    main()
