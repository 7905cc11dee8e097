"""End to end: two gateway processes on different ports, one real Redis, the real catalog and render
service; a presenter on one gateway, viewers on both, over /ws/session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import subprocess
import sys
import time

import httpx
import pytest
import websockets
from collabkit import run

from voxcast.config import Settings
from voxcast.testing import free_port

PASSWORD = "collab-password-1"


@pytest.fixture
def gateways(render_service, redis_url, tmp_path):
    from voxcast.gateway.auth.store import Store

    home = tmp_path / "gateway-home"
    store = Store.from_settings(Settings(home=home))
    for user in ("alice", "bob", "carol"):
        store.add_user(user, PASSWORD, "clinician")
    env = {
        **os.environ,
        "VOXCAST_HOME": str(home),
        "VOXCAST_CATALOG_ADDR": render_service.catalog_addr,
        "VOXCAST_RENDER_ADDRS": render_service.addr,
        "VOXCAST_REDIS_URL": redis_url,
        "VOXCAST_LOG_LEVEL": "WARNING",
    }
    ports = [free_port(), free_port()]
    serve = [sys.executable, "-m", "voxcast.cli", "serve", "gateway", "--host", "127.0.0.1", "--port"]
    procs = [subprocess.Popen([*serve, str(p)], env=env) for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        deadline = time.monotonic() + 60
        for url, proc in zip(urls, procs, strict=True):
            while True:
                try:
                    httpx.get(url + "/api/health", timeout=2)
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None and time.monotonic() < deadline, "gateway did not start"
                    time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def login(url: str, user: str) -> str:
    r = httpx.post(url + "/api/auth/login", json={"username": user, "password": PASSWORD})
    r.raise_for_status()
    return r.json()["access_token"]


class Client:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self.frames: list[dict] = []

    async def next_event(self) -> dict:
        while True:
            message = await asyncio.wait_for(self.ws.recv(), 30)
            if isinstance(message, bytes):
                (n,) = struct.unpack(">I", message[:4])
                self.frames.append(json.loads(message[4 : 4 + n]))
                continue
            event = json.loads(message)
            self.events.append(event)
            return event

    async def until(self, predicate) -> dict:
        while True:
            event = await self.next_event()
            if predicate(event):
                return event

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))


def test_presenter_and_viewers_on_two_gateways(gateways, render_service):
    demo = render_service.demo
    g1, g2 = gateways
    tokens = {"alice": login(g1, "alice"), "bob": login(g2, "bob"), "carol": login(g1, "carol")}

    def ws_url(http: str, **params) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return http.replace("http", "ws") + "/ws/session?" + query

    async def scenario():
        async with websockets.connect(ws_url(g1, token=tokens["alice"], study=demo.study_uid)) as a_ws:
            alice = Client(a_ws)
            state = await alice.next_event()
            assert state["type"] == "session.state"
            sid = state["state"]["session_id"]
            await alice.send(type="session.invite", kind="user")
            invite = (await alice.until(lambda e: e["type"] == "session.invitation"))["token"]
            async with (
                websockets.connect(ws_url(g2, token=tokens["bob"], session=sid, invite=invite)) as b_ws,
                websockets.connect(ws_url(g1, token=tokens["carol"], session=sid, invite=invite)) as c_ws,
            ):
                bob, carol = Client(b_ws), Client(c_ws)
                for viewer in (bob, carol):
                    assert (await viewer.next_event())["type"] == "session.state"
                centre = [float(c) for c in demo.ct.center]
                for i in range(5):
                    view = {
                        "series_uid": demo.ct_series_uid,
                        "plane": {
                            "center": [centre[0], centre[1], centre[2] + i],
                            "right": [1, 0, 0],
                            "down": [0, 1, 0],
                        },
                        "width": 48,
                        "height": 48,
                        "window_center": i,
                        "window_width": 400,
                    }
                    await alice.send(type="session.viewport", viewport_id="ax", state=view)
                await bob.send(type="session.pointer", viewport_id="ax", point=centre)
                await bob.send(type="session.request_control")
                requested = await alice.until(lambda e: e["type"] == "session.control_requested")
                await alice.send(type="session.hand_over", to=requested["by"])
                handed = await bob.until(lambda e: e["type"] == "session.presenter")
                assert handed["presenter"] == requested["by"]
                line = {
                    "kind": "line",
                    "viewport_id": "ax",
                    "series_uid": demo.ct_series_uid,
                    "start": centre,
                    "end": [centre[0] + 30, centre[1] + 40, centre[2]],
                }
                await bob.send(type="session.annotate", annotation=line)
                await bob.send(type="session.crosshair", point=centre)
                last = await bob.until(lambda e: e["type"] == "session.crosshair")
                for viewer in (alice, carol):
                    await viewer.until(lambda e, s=last["seq"]: e.get("seq", 0) >= s)

                # The line, measured by bob's gateway on the volume, reached both gateways' people.
                for c in (alice, bob, carol):
                    drawn = [e for e in c.events if e["type"] == "session.annotation"]
                    assert [e["annotation"]["measurement"]["length_mm"] for e in drawn] == [pytest.approx(50)]

                # Everyone saw the same events in the same order.
                def timeline(c):
                    return [
                        (e["seq"], e["type"]) for e in c.events if "seq" in e and e["type"] != "session.state"
                    ]

                common = set.intersection(*(set(timeline(c)) for c in (alice, bob, carol)))
                assert len(common) >= 9
                for c in (alice, bob, carol):
                    t = [x for x in timeline(c) if x in common]
                    assert t == sorted(common)
                # Viewers on both gateways got the session's frames.
                for c in (bob, carol):
                    while not any(f.get("rung") == "lossless" for f in c.frames):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(c.next_event(), 0.5)
                await alice.send(type="session.end")
                for c in (bob, carol):
                    await c.until(lambda e: e["type"] == "session.ended")

    run(scenario(), timeout=180)
