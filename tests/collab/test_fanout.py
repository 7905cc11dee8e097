"""Latest-wins frame slots and one render per view state."""

from __future__ import annotations

import asyncio

from collabkit import run
from voxcast.gateway.collab import InProcessBus, LatestFrames, ViewportFeed
from voxcast.gateway.collab.fanout import FrameCodec, SettledFrames


def test_latest_frames_keep_only_the_newest_per_viewport():
    async def scenario():
        slot = LatestFrames()
        for i in range(3):
            slot.put("ax", i)
        slot.put("cor", "c")
        assert slot.dropped == 2 and slot.pending() == 2
        assert await slot.get() == ("ax", 2)
        assert await slot.get() == ("cor", "c")
        waiter = asyncio.create_task(slot.get())
        await asyncio.sleep(0)
        slot.put("sag", "s")
        assert await waiter == ("sag", "s")
        slot.close()
        try:
            await slot.get()
        except EOFError:
            pass
        else:
            raise AssertionError("a closed slot must not wait forever")

    run(scenario())


def test_a_new_view_cancels_the_render_in_flight():
    async def scenario():
        started, gate = [], asyncio.Event()

        async def render(session_id, viewport_id, state):
            started.append(state["n"])
            yield ("preview", state["n"])
            await gate.wait()
            yield ("lossless", state["n"])

        feed = ViewportFeed("s1", "ax", render)
        fast, slow = LatestFrames(), LatestFrames()
        feed.attach(fast)
        feed.attach(slow)
        feed.show({"n": 1})
        feed.show({"n": 1})  # same view: no second render
        await asyncio.sleep(0.01)
        feed.show({"n": 2})  # cancels the first at its next rung
        await asyncio.sleep(0.01)
        gate.set()
        frames = []
        while True:
            _, frame = await asyncio.wait_for(fast.get(), 5)
            frames.append(frame)
            if frame == ("lossless", 2):
                break
        assert ("lossless", 1) not in frames
        assert started == [1, 2] and feed.renders == 2
        assert feed.settled == ("lossless", 2)
        # The participant who never read holds one frame: the newest.
        assert slow.pending() == 1 and (await slow.get())[1] == ("lossless", 2)
        late = LatestFrames()
        feed.attach(late)
        assert (await late.get())[1] == ("lossless", 2)
        await feed.close()

    run(scenario())


def test_a_failing_render_is_logged_and_the_next_view_renders(caplog):
    async def scenario():
        async def render(session_id, viewport_id, state):
            if state["n"] == 1:
                raise RuntimeError("render service down")
            yield state["n"]

        feed = ViewportFeed("s1", "ax", render)
        sink = LatestFrames()
        feed.attach(sink)
        feed.show({"n": 1})
        await asyncio.sleep(0.01)
        feed.show({"n": 2})
        assert await asyncio.wait_for(sink.get(), 5) == ("ax", 2)
        await feed.close()

    run(scenario())
    assert "rendering viewport ax failed" in caplog.text


def test_settled_frames_are_shared_only_for_the_same_view():
    async def scenario():
        bus = InProcessBus()
        codec = FrameCodec(encode=lambda f: f.encode(), decode=lambda b: b.decode())
        shared = SettledFrames(bus, "s1", codec, ttl_s=60)
        await shared.save("ax", {"n": 1, "w": [1.0, 2.0]}, "frame-1")
        assert await shared.load("ax", {"w": [1.0, 2.0], "n": 1}) == "frame-1"  # key order is no matter
        assert await shared.load("ax", {"n": 2, "w": [1.0, 2.0]}) is None
        assert await shared.load("cor", {"n": 1, "w": [1.0, 2.0]}) is None
        # A blob this codec cannot read (another version's) is a miss, not a failure.
        ascii_frames = SettledFrames(
            bus, "s1", FrameCodec(encode=lambda b: b, decode=lambda b: b.decode("ascii")), ttl_s=60
        )
        await ascii_frames.save("sag", {"n": 1}, b"\xff")
        assert await ascii_frames.load("sag", {"n": 1}) is None
        # A replica that finds the frame does not render.
        rendered = []

        async def render(session_id, viewport_id, state):
            rendered.append(state)
            yield "fresh"

        feed = ViewportFeed("s1", "ax", render, shared)
        sink = LatestFrames()
        feed.attach(sink)
        feed.show({"n": 1, "w": [1.0, 2.0]})
        assert await asyncio.wait_for(sink.get(), 5) == ("ax", "frame-1")
        assert rendered == [] and feed.renders == 0
        feed.show({"n": 2, "w": [1.0, 2.0]})
        assert await asyncio.wait_for(sink.get(), 5) == ("ax", "fresh")
        await asyncio.sleep(0.01)
        assert await shared.load("ax", {"n": 2, "w": [1.0, 2.0]}) == "fresh"
        await feed.close()

    run(scenario())
