"""The /ws protocol against real catalog and render services (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import websockets
from voxcast.gateway.errors import WS_1003_UNSUPPORTED_DATA, WS_4401_UNAUTHORIZED

from .conftest import GatewayThread, Viewer, image_size, ws_connect

pytestmark = pytest.mark.slow


def run(coro):
    return asyncio.run(coro)


async def open_viewer(stack, user="doctor") -> tuple[Viewer, object]:
    ws = await ws_connect(stack, stack.tokens[user]).__aenter__()
    viewer = Viewer(ws)
    ready = await viewer.event("ready")
    assert ready["protocol"] == 1
    return viewer, ws


def test_ladder_arrives_with_headers(stack):
    async def go():
        async with ws_connect(stack, stack.tokens["doctor"]) as ws:
            viewer = Viewer(ws)
            await viewer.event("ready")
            await viewer.send(
                type="open", viewport="ax", series_uid=stack.study.ct_series_uid, size=[200, 160]
            )
            opened = await viewer.event("opened")
            assert opened["series"]["modality"] == "CT"
            assert opened["state"]["width"] == 200 and opened["state"]["height"] == 160
            header, data = await viewer.frame_where(lambda h: h["rung"] == "lossless")
            rungs = [h["rung"] for h, _ in viewer.frames]
            # The ladder in order, each rung once, ending lossless at full size.
            assert rungs == sorted(set(rungs), key=["preview", "full", "lossless"].index)
            assert rungs[-1] == "lossless" and "full" in rungs
            assert header["encoding"] == "png" and image_size(data) == (200, 160)
            assert header["labels"] == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
            assert header["window"] == [40, 400]  # CT's default, soft tissue
            assert header["viewport"] == "ax" and header["version"] == opened["state"]["version"]
            assert {"render_ms", "encode_ms", "latency_ms"} <= set(header["timings"])
            sequences = [h["sequence"] for h, _ in viewer.frames]
            assert sequences == sorted(sequences)

    run(go())


def test_latest_wins_under_a_burst(stack):
    async def go():
        async with ws_connect(stack, stack.tokens["doctor"]) as ws:
            viewer = Viewer(ws)
            await viewer.event("ready")
            await viewer.send(
                type="open", viewport="ax", series_uid=stack.study.ct_series_uid, size=[128, 128]
            )
            opened = await viewer.event("opened")
            await viewer.frame_where(lambda h: h["rung"] == "lossless")
            first = opened["state"]["version"]
            viewer.frames.clear()
            for i in range(50):
                await viewer.send(type="view", viewport="ax", window={"center": 40 + i, "width": 400})
            final = first + 50
            header, _ = await viewer.frame_where(lambda h: h["version"] == final and h["rung"] == "lossless")
            versions = [h["version"] for h, _ in viewer.frames]
            assert versions == sorted(versions), "an older view arrived after a newer one"
            # Stale states were dropped: far fewer views were rendered than requested.
            assert len(set(versions)) < 50
            states = [e for e in viewer.events if e["type"] == "state"]
            assert states[-1]["state"]["version"] == final
            assert states[-1]["state"]["window_center"] == 89
            assert header["window"] == [89, 400]

    run(go())


def test_bad_messages_get_errors_and_the_connection_stays_up(stack):
    async def go():
        async with ws_connect(stack, stack.tokens["doctor"]) as ws:
            viewer = Viewer(ws)
            await viewer.event("ready")
            await ws.send("this is not json")
            assert (await viewer.event("error"))["code"] == "invalid_argument"
            await viewer.send(type="teleport")
            assert (await viewer.event("error"))["field"] == "type"
            await viewer.send(type="view", viewport="nope", scroll=1)
            error = await viewer.event("error")
            assert (error["code"], error["field"]) == ("not_found", "viewport")
            await viewer.send(type="open", viewport="ax", series_uid=stack.study.ct_series_uid, size=[64, 64])
            await viewer.event("opened")
            cases = [
                ({"zoom": 0}, "zoom"),
                ({"window": {"center": 40, "width": -5}}, "window.width"),
                ({"mode": "xray"}, "mode"),
                ({"fusion_opacity": 2}, "fusion_opacity"),
                ({"size": [1, 99999]}, "size.0"),
                ({"scroll": "up"}, "scroll"),
                ({"colour": "red"}, "colour"),
            ]
            for changes, field in cases:
                await viewer.send(type="view", viewport="ax", **changes)
                error = await viewer.event("error")
                assert error["field"] == field, (changes, error)
                assert error["viewport"] == "ax"
            await viewer.send(type="open", viewport="b", series_uid="1.2.3.4")
            error = await viewer.event("error")
            assert (error["code"], error["field"]) == ("not_found", "series_uid")
            # A preset the render service does not know: its INVALID_ARGUMENT comes back as an event.
            await viewer.send(type="view", viewport="ax", preset="no-such-preset")
            error = await viewer.event("error")
            assert error["code"] == "invalid_argument" and "preset" in error["message"]
            # Still alive: a good change renders.
            await viewer.send(type="view", viewport="ax", preset="lung")
            header, _ = await viewer.frame_where(lambda h: h["rung"] == "lossless")
            await viewer.send(type="ping", id=7)
            assert (await viewer.event("pong"))["id"] == 7
            await viewer.send(type="close", viewport="ax")
            assert (await viewer.event("closed"))["viewport"] == "ax"

    run(go())


def test_binary_client_message_is_a_protocol_violation(stack):
    async def go():
        async with ws_connect(stack, stack.tokens["doctor"]) as ws:
            await Viewer(ws).event("ready")
            await ws.send(b"\x00\x01")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == WS_1003_UNSUPPORTED_DATA

    run(go())


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_no_or_bad_token_is_rejected(stack, token):
    async def go():
        async with ws_connect(stack, token) as ws:
            if token is None:
                await ws.send('{"type": "open", "viewport": "a", "series_uid": "1.2"}')
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == WS_4401_UNAUTHORIZED

    run(go())


def test_token_in_first_message(stack):
    async def go():
        async with ws_connect(stack) as ws:
            viewer = Viewer(ws)
            await viewer.send(type="auth", token=stack.tokens["admin"])
            ready = await viewer.event("ready")
            assert ready["user"]["role"] == "admin"

    run(go())


def test_share_link_opens_only_its_study(stack):
    with stack.client("doctor") as client:
        link, guest = stack.share_with_guest(client, stack.study.study_uid)

    async def go():
        async with ws_connect(stack, guest) as ws:
            viewer = Viewer(ws)
            ready = await viewer.event("ready")
            assert ready["user"] == {
                "name": f"share:{link['id']}",
                "role": "guest",
                "study_uid": stack.study.study_uid,
            }
            await viewer.send(type="open", viewport="x", series_uid=stack.other_study.ct_series_uid)
            error = await viewer.event("error")
            assert (error["code"], error["field"]) == ("forbidden", "series_uid")
            await viewer.send(type="open", viewport="a", series_uid=stack.study.ct_series_uid, size=[64, 64])
            await viewer.event("opened")
            await viewer.frame_where(lambda h: h["viewport"] == "a")

    run(go())


def test_fusion_of_ct_and_pet(stack):
    async def go():
        async with ws_connect(stack, stack.tokens["doctor"]) as ws:
            viewer = Viewer(ws)
            await viewer.event("ready")
            await viewer.send(type="open", viewport="f", series_uid=stack.study.ct_series_uid, size=[96, 96])
            await viewer.event("opened")
            _, plain = await viewer.frame_where(lambda h: h["rung"] == "lossless")
            await viewer.send(
                type="view",
                viewport="f",
                fusion_series_uid=stack.study.pet_series_uid,
                fusion_opacity=0.8,
                fusion_colormap="hot-iron",
            )
            state = (await viewer.event("state"))["state"]
            assert state["fusion_series_uid"] == stack.study.pet_series_uid
            _, fused = await viewer.frame_where(
                lambda h: h["rung"] == "lossless" and h["version"] == state["version"]
            )
            assert fused != plain
            await viewer.send(type="view", viewport="f", fusion_series_uid=stack.other_study.pet_series_uid)
            error = await viewer.event("error")
            assert (error["code"], error["field"]) == ("invalid_argument", "fusion_series_uid")

    run(go())


def test_a_dead_render_service_is_skipped(stack):
    """Two render addresses, one of them dead: every series still renders."""

    from voxcast.gateway.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    settings = stack.settings.model_copy(update={"render_addrs": f"{dead},{stack.settings.render_addrs}"})
    gateway = GatewayThread(create_app(settings))
    url = gateway.start()
    try:

        async def go():
            ws_url = url.replace("http://", "ws://") + "/ws?token=" + stack.tokens["doctor"]
            async with websockets.connect(ws_url) as ws:
                viewer = Viewer(ws)
                await viewer.event("ready")
                uids = [
                    stack.study.ct_series_uid,
                    stack.study.pet_series_uid,
                    stack.other_study.ct_series_uid,
                ]
                for i, uid in enumerate(uids):
                    await viewer.send(type="open", viewport=f"v{i}", series_uid=uid, size=[48, 48])
                done: set[str] = set()
                while len(done) < len(uids):
                    header, _ = await viewer.frame_where(lambda h: h["rung"] == "lossless")
                    done.add(header["viewport"])
                assert not [e for e in viewer.events if e["type"] == "error"]

        run(go())
        health = httpx.get(url + "/api/health").json()
        assert health["status"] == "ok"
        assert {r["addr"]: r["reachable"] for r in health["render"]} == {
            dead: False,
            stack.settings.render_addrs: True,
        }
    finally:
        gateway.stop()


def test_thick_slab_and_projection_modes_render(stack):
    async def go():
        async with ws_connect(stack, stack.tokens["doctor"]) as ws:
            viewer = Viewer(ws)
            await viewer.event("ready")
            await viewer.send(type="open", viewport="s", series_uid=stack.study.ct_series_uid, size=[64, 64])
            await viewer.event("opened")
            _, thin = await viewer.frame_where(lambda h: h["rung"] == "lossless")
            images = {"thin": thin}
            for name, changes in {
                "slab": {"slab_mm": 30},
                "mip": {"mode": "mip", "slab_mm": 0},
                "vr": {"mode": "vr"},
            }.items():
                await viewer.send(type="view", viewport="s", **changes)
                version = (await viewer.event("state"))["state"]["version"]
                _, images[name] = await viewer.frame_where(
                    lambda h, v=version: h["rung"] == "lossless" and h["version"] == v
                )
            digests = {k: hash(v) for k, v in images.items()}
            assert len(set(digests.values())) == len(images), digests
            assert not [e for e in viewer.events if e["type"] == "error"]

    run(go())
