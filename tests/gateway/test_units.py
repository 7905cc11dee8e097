"""Pure pieces: the hash ring, the view-state model, message validation, latest-wins sending."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from voxcast.gateway.backends import RenderPool
from voxcast.gateway.discovery import StaticRenderDiscovery
from voxcast.gateway.ring import HashRing
from voxcast.gateway.viewstate import ViewState, VolumeBox
from voxcast.gateway.ws import messages
from voxcast.gateway.ws.sender import FrameSender, pack_frame, unpack_frame

from voxcast.v1 import render_pb2

ADDRS = [f"10.0.0.{i}:50052" for i in range(1, 6)]
KEYS = [f"1.2.840.{i}" for i in range(2000)]


def test_ring_is_stable_and_moves_few_keys():
    ring = HashRing(ADDRS)
    owners = {k: ring.owner(k) for k in KEYS}
    assert owners == {k: HashRing(reversed(ADDRS)).owner(k) for k in KEYS}
    assert len(set(owners.values())) == len(ADDRS)
    ring.update(ADDRS[:-1])
    moved = [k for k in KEYS if ring.owner(k) != owners[k]]
    # Only the removed address's keys move, to the next address on their ring.
    assert all(owners[k] == ADDRS[-1] for k in moved)
    assert all(
        ring.owner(k) == next(a for a in HashRing(ADDRS).candidates(k) if a != ADDRS[-1]) for k in moved
    )
    assert sorted(ring.candidates(KEYS[0])) == sorted(ADDRS[:-1])
    assert HashRing().owner("x") is None


def test_pool_puts_dead_addresses_last():
    pool = RenderPool(StaticRenderDiscovery(ADDRS))
    pool._on_change(ADDRS)
    order = pool.addresses_for(KEYS[0])
    pool._mark_dead(order[0])
    assert pool.addresses_for(KEYS[0]) == order[1:] + order[:1]


def test_static_discovery_needs_an_address():
    with pytest.raises(ValueError, match="VOXCAST_RENDER_ADDRS"):
        StaticRenderDiscovery([])
    seen = []
    StaticRenderDiscovery(ADDRS[:2]).start(seen.append)
    assert seen == [ADDRS[:2]]


BOX = VolumeBox(
    np.array([-100.0, -80.0, -200.0]), np.eye(3)[[2, 1, 0]], np.array([2.0, 1.0, 1.0]), (50, 160, 200)
)
# axes: slice -> z, row -> y, column -> x (an ordinary axial acquisition)


def test_initial_views_follow_the_display_conventions():
    axial = ViewState.initial("1.2", BOX, width=200, height=200)
    assert np.allclose(axial.center, BOX.center)
    assert np.allclose(axial.normal, [0, 0, 1])
    coronal = axial.reoriented("coronal")
    assert np.allclose(coronal.right, [1, 0, 0]) and np.allclose(coronal.down, [0, 0, -1])
    sagittal = axial.reoriented("sagittal")
    assert np.allclose(sagittal.right, [0, 1, 0]) and np.allclose(sagittal.normal, [-1, 0, 0])
    # Fitting: the whole 199 mm wide volume fits in 200 pixels.
    assert 199 / 200 <= axial.pixel_mm <= 1.1
    assert axial.position() == {
        "slice": 24,
        "slices": 50,
        "position_mm": round(BOX.center[2], 2),
        "slice_mm": BOX.spacing[0],
    }


def test_scroll_steps_one_slice_and_stays_inside():
    s = ViewState.initial("1.2", BOX)
    assert s.scrolled(1).position()["slice"] == s.position()["slice"] + 1
    assert s.scrolled(1).center[2] == pytest.approx(s.center[2] + 2.0)
    assert s.scrolled(1000).position()["slice"] == 49
    assert s.scrolled(-1000).position()["slice"] == 0
    assert s.scrolled(1).version == s.version + 1


def test_zoom_pan_rotate_window():
    s = ViewState.initial("1.2", BOX, width=100, height=100)
    assert s.zoomed(2).pixel_mm == pytest.approx(s.pixel_mm / 2)
    panned = s.panned(10, 0)
    assert panned.center[0] == pytest.approx(s.center[0] - 10 * s.pixel_mm)
    turned = s.rotated(90, 0)
    assert np.allclose(np.linalg.norm(turned.right), 1) and np.isclose(np.dot(turned.right, turned.down), 0)
    assert not np.allclose(turned.normal, s.normal)
    back = turned.rotated(-90, 0)
    assert np.allclose(back.right, s.right) and np.allclose(back.down, s.down)
    request = s.with_(window_center=50, window_width=300).render_request("c/v")
    assert (
        request.WhichOneof("view") == "plane" and request.window_width == 300 and request.viewport_id == "c/v"
    )
    vr = s.with_(mode="vr").render_request("c/v")
    assert vr.WhichOneof("view") == "camera" and vr.mode == render_pb2.VR
    assert np.allclose([vr.camera.direction.x, vr.camera.direction.y, vr.camera.direction.z], s.normal)
    assert vr.camera.fov_mm == pytest.approx(s.pixel_mm * 100)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ('{"type": "view", "viewport": "a", "zoom": -1}', "zoom"),
        ('{"type": "view", "viewport": "a", "pan": {"dx": 1}}', "pan.dy"),
        ('{"type": "view", "viewport": "a b", "scroll": 1}', "viewport"),
        ('{"type": "open", "viewport": "a"}', "series_uid"),
        ('{"type": "open", "viewport": "a", "series_uid": "1.2", "center": [1, 2]}', "center.2"),
        ('{"kind": "view"}', "type"),
        ("[1, 2]", ""),
    ],
)
def test_bad_messages_name_their_field(message, field):
    with pytest.raises(messages.BadMessage) as error:
        messages.parse(message)
    assert error.value.field == field


class SlowTransport:
    """Sends block until released, like a client that has stopped reading."""

    def __init__(self) -> None:
        self.sent: list = []
        self.release = asyncio.Event()

    async def send_text(self, data: str) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        await self.release.wait()
        self.sent.append(data)


def test_slow_client_gets_the_newest_frame_not_a_backlog():
    async def go():
        transport = SlowTransport()
        sender = FrameSender(transport)
        writer = asyncio.create_task(sender.run())
        sender.frame("a", pack_frame({"sequence": 0}, b""))
        await asyncio.sleep(0.01)  # the writer is now stuck sending frame 0
        for i in range(1, 30):
            sender.frame("a", pack_frame({"sequence": i}, b"x"))
            sender.frame("b", pack_frame({"sequence": 100 + i}, b"y"))
        sender.event({"type": "error"})
        transport.release.set()
        await asyncio.sleep(0.05)
        sender.close()
        await asyncio.wait_for(writer, 1)
        frames = [unpack_frame(p)[0]["sequence"] for p in transport.sent if isinstance(p, bytes)]
        assert frames == [0, 29, 129]
        assert sender.frames_replaced == 28 * 2
        assert '{"type":"error"}' in transport.sent

    asyncio.run(go())


@pytest.mark.parametrize("mode", ["mpr", "vr"])
def test_view_state_is_what_a_shared_session_mirrors(mode):
    """A viewport's state fits the session layer's viewport model unchanged."""
    models = pytest.importorskip("voxcast.gateway.collab.models")
    s = ViewState.initial("1.2", BOX).with_(mode=mode, fusion_series_uid="1.3", fusion_opacity=0.3)
    mirrored = models.ViewportState(**s.render_fields())
    assert mirrored.series_uids() == {"1.2", "1.3"}
    assert (mirrored.plane is not None) == (mode == "mpr")
