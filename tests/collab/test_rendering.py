"""Session viewports rendered by the render service: the requests, and real frames fanned out."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from collabkit import CT, PET, make_hubs, run, view
from voxcast.gateway.collab import Identity, InvalidCommand
from voxcast.gateway.collab.rendering import FRAME_CODEC, grpc_renderer, request_renderer, to_render_request
from voxcast.gateway.ws.sender import unpack_frame

from voxcast.grpcio import CHANNEL_OPTIONS
from voxcast.v1 import render_pb2, render_pb2_grpc


def test_mpr_with_fusion():
    state = view(
        40, fusion={"series_uid": PET, "opacity": 0.4, "window_width": 6}, slab_mm=5, slab_mode="mean"
    )
    req = to_render_request("s1", "ax", state)
    assert req.viewport_id == "s1/ax" and req.lossless
    assert to_render_request("s1", "ax", state, "gw1").viewport_id == "s1/ax@gw1"
    assert req.WhichOneof("view") == "plane"
    assert (req.plane.center.z, req.plane.right.x, req.plane.pixel_mm) == (40, 1, 0.5)
    assert (req.series_uid, req.fusion_series_uid, req.fusion_opacity) == (CT, PET, pytest.approx(0.4))
    assert (req.window_center, req.window_width, req.slab_mode) == (40, 400, render_pb2.SLAB_MEAN)
    assert (req.width, req.height) == (512, 512)


def test_volume_rendering_uses_the_camera():
    camera = {"target": [0, 0, 0], "direction": [0, 1, 0], "up": [0, 0, 1], "fov_mm": 300}
    state = {"series_uid": CT, "mode": "vr", "camera": camera, "preset": "ct-bone", "shading": True}
    req = to_render_request("s1", "3d", state)
    assert req.mode == render_pb2.VR and req.WhichOneof("view") == "camera"
    assert (req.camera.direction.y, req.camera.fov_mm, req.shading) == (1, 300, True)


def test_a_bad_state_is_refused_by_field():
    with pytest.raises(InvalidCommand) as err:
        to_render_request("s1", "ax", {**view(), "width": 5})
    assert err.value.field == "state.width"


def full_frames_rendered(server) -> float:
    """The render service's own count of full-resolution frames it rendered (a coalesced request
    counts once)."""
    total = 0.0
    for metric in server.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "voxcast_render_frames_total" and sample.labels.get("rung") == "full":
                total += sample.value
    return total


def test_session_frames_come_from_the_render_service_once_per_gateway(render_service, redis_url):
    demo = render_service.demo

    async def scenario():
        channels = [grpc.aio.insecure_channel(render_service.addr, options=CHANNEL_OPTIONS) for _ in range(2)]
        renderers = [grpc_renderer(render_pb2_grpc.RenderServiceStub(c)) for c in channels]
        (a, b), close = await make_hubs("redis", redis_url, frame_codec=FRAME_CODEC)
        a.renderer, b.renderer = renderers
        (c,), close_c = await make_hubs("redis", redis_url, frame_codec=FRAME_CODEC, count=1)
        c.renderer = renderers[0]
        try:
            owner_id = Identity.user("owner", "Dr Owner")
            sid = await a.create_session(owner_id, demo.study_uid, [demo.ct_series_uid, demo.pet_series_uid])
            owner = await a.join(sid, owner_id)
            token = await owner.invite("user")
            people = [owner]
            for i in range(6):
                hub = (a, b)[i % 2]
                who = Identity.user(f"viewer{i}", f"Viewer {i}")
                people.append(await hub.join(sid, who, await hub.redeem(token, user=who)))
            before = full_frames_rendered(render_service.server)
            centre = [float(c) for c in demo.ct.center]
            state = {
                "series_uid": demo.ct_series_uid,
                "plane": {"center": centre, "right": [1, 0, 0], "down": [0, 1, 0]},
                "width": 64,
                "height": 64,
                "window_center": 40,
                "window_width": 400,
                "fusion": {"series_uid": demo.pet_series_uid, "opacity": 0.5},
            }
            await owner.send({"type": "viewport", "viewport_id": "ax", "state": state})
            for p in people:
                while True:
                    vid, packet = await asyncio.wait_for(p.frames.get(), 120)
                    if packet.header["rung"] == "lossless":
                        break
                head = packet.header
                assert (vid, head["viewport"], head["width"], head["height"]) == ("ax", "ax", 64, 64)
                assert head["encoding"] == "png" and head["session"] is True
                assert head["labels"]["top"] == "A" and head["labels"]["left"] == "R"
                assert head["window"] == [40, 400]
                assert packet.data.endswith(b"IEND\xaeB`\x82")  # the whole PNG follows the header
            # Seven followers on two gateways: at most one render per gateway.
            rendered = full_frames_rendered(render_service.server) - before
            assert 1 <= rendered <= 2
            assert a.renders(sid) == 1 and b.renders(sid) == 1
            # A late joiner on a third replica gets the settled frame at once, from the bus: no render.
            late_id = Identity.user("late", "Dr Late")
            late = await c.join(sid, late_id, await c.redeem(token, user=late_id))
            vid, settled = await asyncio.wait_for(late.frames.get(), 10)
            assert (vid, settled.header["rung"], settled.header["width"]) == ("ax", "lossless", 64)
            # The picture the other replicas' followers were sent (its sequence number may differ).
            assert unpack_frame(settled.data)[1] == unpack_frame(packet.data)[1]
            assert c.renders(sid) == 0
        finally:
            await close_c()
            await close()
            for c in channels:
                await c.close()

    run(scenario(), timeout=180)


def test_a_render_pool_call_works_as_renderer(render_service):
    """The gateway's RenderPool.render is an async generator of frames; closing early closes it."""
    demo = render_service.demo

    async def scenario():
        channel = grpc.aio.insecure_channel(render_service.addr, options=CHANNEL_OPTIONS)
        stub = render_pb2_grpc.RenderServiceStub(channel)
        closed = []

        async def pool_render(request):
            try:
                async for frame in stub.Render(request):
                    yield frame
            finally:
                closed.append(request.viewport_id)

        render = request_renderer(pool_render)
        state = {
            "series_uid": demo.ct_series_uid,
            "plane": {"center": [float(c) for c in demo.ct.center], "right": [1, 0, 0], "down": [0, 1, 0]},
            "width": 32,
            "height": 32,
        }
        frames = [f async for f in render("s1", "ax", state)]
        assert frames[-1].header["rung"] == "lossless"
        stream = render("s1", "ax", state)
        first = await stream.__anext__()
        await stream.aclose()
        assert first.header["rung"] == "preview"
        assert len(closed) == 2 and closed[0].startswith("s1/ax@")
        await channel.close()

    run(scenario(), timeout=120)


def test_measurements_on_a_volume_from_the_catalog(render_service):
    """An ROI on the demo CT fetched from the real catalog: the server's figures, in HU."""
    from voxcast.gateway.collab.measure import measure_ellipse
    from voxcast.gateway.collab.volumes import catalog_volume_loader

    demo = render_service.demo

    async def scenario():
        load = catalog_volume_loader(render_service.catalog_addr)
        volume = await load(demo.ct_series_uid)
        assert (await load(demo.ct_series_uid)) is volume  # kept
        assert volume.units == "HU" and volume.shape == demo.ct.shape
        centre = demo.ct.center
        got = measure_ellipse(volume, centre, [10, 0, 0], [0, 10, 0])
        truth = measure_ellipse(demo.ct, centre, [10, 0, 0], [0, 10, 0])
        assert got["mean"] == pytest.approx(truth["mean"], abs=1.0)
        assert got["units"] == "HU"

    run(scenario(), timeout=120)
