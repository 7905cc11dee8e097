"""Rendering session viewports with the render service: the RenderRequest for a viewport's state,
and the Renderer that streams its frames over gRPC.

The request's viewport_id is "<session>/<viewport>@<gateway>": one render stream per session
viewport and gateway replica, so a newer state from this gateway cancels its older one in the render
service too (latest wins) without cancelling another replica's stream, which may be a step behind;
identical requests from several replicas are still rendered once there (coalescing ignores the
viewport). Session frames always settle lossless: a tumor board reads diagnostic images.

The renderer yields each frame already packed for the WebSocket (a Packet), once per gateway: every
follower in this gateway is sent the same bytes, so a frame costs one header and one copy however
many people watch it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property

from voxcast.gateway.ws.renderer import picture_header
from voxcast.gateway.ws.sender import pack_frame, unpack_frame

from voxcast.v1 import common_pb2, render_pb2, render_pb2_grpc

from . import models
from .fanout import FrameCodec, Renderer

MODES = {
    "mpr": render_pb2.MPR,
    "mip": render_pb2.MIP,
    "minip": render_pb2.MINIP,
    "avgip": render_pb2.AVGIP,
    "vr": render_pb2.VR,
}
SLAB_MODES = {"mip": render_pb2.SLAB_MIP, "minip": render_pb2.SLAB_MINIP, "mean": render_pb2.SLAB_MEAN}


def _vec(v) -> common_pb2.Vec3:
    return common_pb2.Vec3(x=v[0], y=v[1], z=v[2])


def to_render_request(
    session_id: str, viewport_id: str, state: dict, caller: str = ""
) -> render_pb2.RenderRequest:
    """The RenderRequest for `state` (a ViewportState as stored in the session), on behalf of
    `caller` (this gateway replica)."""
    view = models.parse(models.ViewportState, state, "state")
    request = render_pb2.RenderRequest(
        series_uid=view.series_uid,
        mode=MODES[view.mode],
        width=view.width,
        height=view.height,
        preset=view.preset,
        window_center=view.window_center,
        window_width=view.window_width,
        invert=view.invert,
        colormap=view.colormap,
        slab_mm=view.slab_mm,
        slab_mode=SLAB_MODES[view.slab_mode],
        step_mm=view.step_mm,
        shading=view.shading,
        viewport_id=f"{session_id}/{viewport_id}" + (f"@{caller}" if caller else ""),
        lossless=True,
    )
    if view.plane is not None and view.mode == "mpr":
        p = view.plane
        request.plane.CopyFrom(
            render_pb2.Plane(
                center=_vec(p.center), right=_vec(p.right), down=_vec(p.down), pixel_mm=p.pixel_mm
            )
        )
    else:
        c = view.camera
        request.camera.CopyFrom(
            render_pb2.Camera(
                target=_vec(c.target), direction=_vec(c.direction), up=_vec(c.up), fov_mm=c.fov_mm
            )
        )
    if view.fusion is not None:
        f = view.fusion
        request.fusion_series_uid = f.series_uid
        request.fusion_opacity = f.opacity
        request.fusion_colormap = f.colormap
        request.fusion_window_center = f.window_center
        request.fusion_window_width = f.window_width
    return request


@dataclass(frozen=True)
class Packet:
    """A session viewport's frame as sent on the WebSocket: packed like /ws frames (4-byte header
    length, JSON header, image bytes) with {"session": true, "viewport": id, ...} in the header."""

    data: bytes

    @cached_property
    def header(self) -> dict:
        return unpack_frame(self.data)[0]


def frame_packet(viewport_id: str, frame: render_pb2.Frame) -> Packet:
    header = {"session": True, "viewport": viewport_id, "sequence": frame.sequence, **picture_header(frame)}
    return Packet(pack_frame(header, frame.data))


def request_renderer(render_call) -> Renderer:
    """A Renderer over any call taking a RenderRequest and giving its frames as an async iterator:
    the gateway's render pool (`Backends.render.render`) or a stub's `Render`. One per gateway
    process; it yields Packets. Closing the stream, as a newer view state does, cancels the call,
    and the render service drops the stale view."""
    caller = uuid.uuid4().hex[:8]

    async def render(session_id: str, viewport_id: str, state: dict):
        call = render_call(to_render_request(session_id, viewport_id, state, caller))
        try:
            async for frame in call:
                yield frame_packet(viewport_id, frame)
        finally:
            if hasattr(call, "cancel"):
                call.cancel()  # a gRPC call
            else:
                await call.aclose()  # an async generator

    return render


def grpc_renderer(stub: render_pb2_grpc.RenderServiceStub) -> Renderer:
    """A Renderer over a RenderService stub on a grpc.aio channel."""
    return request_renderer(stub.Render)


# Settled frames cross replicas as the packets their followers are sent.
FRAME_CODEC = FrameCodec(encode=lambda packet: packet.data, decode=Packet)
