"""The WebSocket glue: namespaced session messages out, commands in, errors back."""

from __future__ import annotations

import asyncio

from collabkit import CT, STUDY, ladder_renderer, make_hubs, run, view
from voxcast.gateway.collab import Identity
from voxcast.gateway.collab.connection import SessionConnection, is_session_message

OWNER = Identity.user("owner", "Dr Owner")
BOB = Identity.user("bob", "Dr Bob")


class Socket:
    """What the gateway's WebSocket would send, recorded."""

    def __init__(self) -> None:
        self.json: list[dict] = []
        self.frames: list[tuple[str, object]] = []
        self.changed = asyncio.Event()

    async def send_json(self, message: dict) -> None:
        self.json.append(message)
        self.changed.set()

    async def send_frame(self, viewport_id: str, frame) -> None:
        self.frames.append((viewport_id, frame))
        self.changed.set()

    async def until(self, predicate, timeout: float = 10.0):
        async def wait():
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def test_session_traffic_over_a_connection():
    async def scenario():
        (a, b), close = await make_hubs("inprocess", None, renderer=ladder_renderer())
        try:
            sid = await a.create_session(OWNER, STUDY, [CT])
            owner_socket, bob_socket = Socket(), Socket()
            owner = SessionConnection(
                await a.join(sid, OWNER), owner_socket.send_json, owner_socket.send_frame
            )
            token = await a.invite(sid, OWNER, "user")
            bob_p = await b.join(sid, BOB, await b.redeem(token, user=BOB))
            bob = SessionConnection(bob_p, bob_socket.send_json, bob_socket.send_frame)
            await bob_socket.until(lambda s: s.json and s.json[0]["type"] == "session.state")

            await owner.command({"type": "session.viewport", "viewport_id": "ax", "state": view(60)})
            await bob_socket.until(lambda s: any(m["type"] == "session.viewport" for m in s.json))
            await bob_socket.until(lambda s: any(f[1]["rung"] == "lossless" for f in s.frames))
            assert all(is_session_message(m) for m in bob_socket.json)

            await bob.command({"type": "session.viewport", "viewport_id": "ax", "state": view(1)})
            await bob.command({"type": "view", "viewport": "ax"})  # the gateway's own message, misrouted
            await bob_socket.until(lambda s: sum(m["type"] == "session.error" for m in s.json) == 2)
            errors = [m for m in bob_socket.json if m["type"] == "session.error"]
            assert errors[0]["code"] == "forbidden" and errors[1]["field"] == "type"

            await owner.command({"type": "session.end"})
            await asyncio.wait_for(bob.wait(), 10)
            assert bob_socket.json[-1]["type"] == "session.ended"
            await bob.close()
            await owner.close()
        finally:
            await close()

    run(scenario())
