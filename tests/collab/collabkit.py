"""Helpers for the session-layer tests: an event-loop runner, a small
oblique CT volume and a renderer producing a three-rung ladder."""

from __future__ import annotations

import asyncio

import numpy as np
from argon2 import PasswordHasher

from voxcast.volume import Volume

SECRET = "collab-tests-secret-key-with-32-bytes!"
STUDY = "1.2.840.1"
CT = "1.2.840.1.1"
PET = "1.2.840.1.2"
OTHER_STUDY_SERIES = "1.2.840.9.1"


# Real argon2, with parameters cheap enough for a test suite on a shared two-core machine.
FAST_PIN_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def run(coro, timeout: float = 60.0):
    """Run a coroutine to completion on a fresh event loop, bounded in time."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def ct_volume() -> Volume:
    """40x32x48 voxels of 2.0 x 0.8 x 0.7 mm, oblique; the value is 10 HU per mm along the column
    axis in world terms, so any ROI's mean is the value at its centre."""
    shape = (40, 32, 48)
    angle = np.deg2rad(20)
    column = np.array([1.0, 0.0, 0.0])
    row = np.array([0.0, np.cos(angle), -np.sin(angle)])
    direction = np.stack([np.cross(column, row), row, column])  # rows: slice, row, column axes in LPS
    spacing = (2.0, 0.8, 0.7)
    k, i, j = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    voxels = (10.0 * j * spacing[2] - 100.0).astype(np.float32)
    return Volume.from_geometry(
        voxels, origin=(-20.0, -15.0, 30.0), spacing=spacing, direction=direction, units="HU", series_uid=CT
    )


async def load_volume(series_uid: str) -> Volume:
    if series_uid != CT:
        raise KeyError(series_uid)
    return ct_volume()


def ladder_renderer(log: list | None = None, delay: float = 0.0):
    """A renderer yielding preview, full and lossless frames of one view state."""

    async def render(session_id: str, viewport_id: str, state: dict):
        if log is not None:
            log.append((viewport_id, state))
        for rung in ("preview", "full", "lossless"):
            if delay:
                await asyncio.sleep(delay)
            yield {"viewport_id": viewport_id, "rung": rung, "window_center": state["window_center"]}

    return render


def view(window_center: float = 40.0, series: str = CT, **extra) -> dict:
    return {
        "series_uid": series,
        "mode": "mpr",
        "plane": {"center": [0, 0, 40], "right": [1, 0, 0], "down": [0, 1, 0], "pixel_mm": 0.5},
        "window_center": window_center,
        "window_width": 400,
        **extra,
    }


async def make_hubs(bus_kind: str, redis_url: str | None, count: int = 2, **kw):
    """Hubs sharing sessions, as gateway replicas would: each over its own Redis connections, or
    (in-process) over one in-memory bus. Returns the hubs and a coroutine function closing them."""
    from voxcast.gateway.collab import InProcessBus, SessionHub
    from voxcast.gateway.collab.redis_bus import RedisBus

    kw.setdefault("volume_loader", load_volume)
    kw.setdefault("pin_hasher", FAST_PIN_HASHER)
    if bus_kind == "redis":
        buses = [RedisBus(redis_url) for _ in range(count)]
    else:
        buses = [InProcessBus()] * count
    hubs = [SessionHub(bus, SECRET, **kw) for bus in buses]

    async def close():
        for hub in hubs:
            await hub.close()
        for bus in set(buses):
            await bus.close()

    return hubs, close


async def next_event(participant, timeout: float = 10.0) -> dict:
    return await asyncio.wait_for(participant.receive(), timeout)


async def events_until(participant, last_seq: int, timeout: float = 10.0) -> list[dict]:
    """Messages up to and including sequence number last_seq (a state message counts as all before)."""
    out = []
    while True:
        message = await next_event(participant, timeout)
        out.append(message)
        if message["seq"] >= last_seq:
            return out
