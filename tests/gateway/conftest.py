"""A real stack for the gateway tests: catalog and render gRPC servers and the gateway (uvicorn) on
free loopback ports, sharing one temporary VOXCAST_HOME, with users and demo studies uploaded
through the gateway's REST API."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets
from voxcast.gateway.app import server_config

from voxcast.config import Settings

PASSWORD = "correct-horse-battery"


@dataclass
class Stack:
    url: str
    settings: Settings
    tokens: dict[str, str]  # username -> access token
    upload: dict  # the REST answer of uploading the first demo study
    study: object  # voxcast.demo.DemoStudy
    other_study: object  # a second demo study (another patient)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def client(self, user: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def share_with_guest(self, client: httpx.Client, study_uid: str) -> tuple[dict, str]:
        """A 30-minute share link made by `client`, opened by an anonymous guest: (link, guest token)."""
        link = client.post("/api/shares", json={"study_uid": study_uid, "expires_minutes": 30}).json()
        with httpx.Client(base_url=self.url) as anonymous:
            guest = anonymous.post(f"/api/shares/{link['token']}/open", json={}).json()["access_token"]
        return link, guest


class GatewayThread:
    """The gateway app served by uvicorn in a thread, on a free port."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(server_config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def demo_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.dcm"))


def upload_files(client: httpx.Client, paths: list[Path]) -> dict:
    files = [("files", (p.name, p.read_bytes(), "application/dicom")) for p in paths]
    response = client.post("/api/upload", files=files)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from voxcast.catalog.server import create_server as create_catalog
    from voxcast.gateway.app import create_app
    from voxcast.gateway.auth.store import Store
    from voxcast.render.server import create_server as create_render

    from voxcast.demo import write_demo_study

    home = tmp_path_factory.mktemp("gateway-home")
    settings = Settings(home=home, render_cache_mb=256, metrics_port=0)
    catalog, catalog_port = create_catalog(settings, 0, host="127.0.0.1")
    catalog.start()
    catalog_addr = f"127.0.0.1:{catalog_port}"
    render, render_port = create_render(settings, 0, catalog_addr, host="127.0.0.1")
    render.start()
    settings = settings.model_copy(
        update={"catalog_addr": catalog_addr, "render_addrs": f"127.0.0.1:{render_port}"}
    )

    store = Store.from_settings(settings)
    store.add_user("admin", PASSWORD, "admin")
    store.add_user("doctor", PASSWORD, "clinician")
    gateway = GatewayThread(create_app(settings))
    url = gateway.start()
    try:
        tokens = {}
        with httpx.Client(base_url=url) as client:
            for user in ("admin", "doctor"):
                r = client.post("/api/auth/login", json={"username": user, "password": PASSWORD})
                assert r.status_code == 200, r.text
                tokens[user] = r.json()["access_token"]
        study = write_demo_study(home / "demo", size="small", seed=0)
        other = write_demo_study(home / "demo-other", size="small", seed=1)
        stack = Stack(url, settings, tokens, {}, study, other)
        with stack.client("doctor") as client:
            stack.upload = upload_files(client, demo_files(study.out_dir))
            upload_files(client, demo_files(other.out_dir))
        yield stack
    finally:
        gateway.stop()
        render.stop(0)
        catalog.stop(0)


# WebSocket helpers


def unpack(packet: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack(">I", packet[:4])
    return json.loads(packet[4 : 4 + n]), packet[4 + n :]


class Viewer:
    """A WebSocket client that sorts what arrives into frames and events."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[tuple[dict, bytes]] = []
        self.events: list[dict] = []

    async def send(self, **message) -> None:
        await self.ws.send(json.dumps(message))

    async def next(self, timeout: float = 60) -> dict | tuple[dict, bytes]:
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(message, bytes):
            frame = unpack(message)
            self.frames.append(frame)
            return frame
        event = json.loads(message)
        self.events.append(event)
        return event

    async def event(self, type_: str, timeout: float = 60) -> dict:
        while True:
            item = await self.next(timeout)
            if isinstance(item, dict) and item["type"] == type_:
                return item

    async def frame_where(self, predicate, timeout: float = 60) -> tuple[dict, bytes]:
        while True:
            item = await self.next(timeout)
            if isinstance(item, tuple) and predicate(item[0]):
                return item


def ws_connect(stack: Stack, token: str | None = None):
    url = stack.ws_url + (f"?token={token}" if token else "")
    return websockets.connect(url, max_size=64 * 1024 * 1024)


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size
