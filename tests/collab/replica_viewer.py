"""A viewer on a gateway replica of its own (a separate process): joins a session over Redis with an
invitation and prints every message it receives as a JSON line until the session ends.

Usage: python replica_viewer.py REDIS_URL SESSION_ID TOKEN USER_ID
"""

from __future__ import annotations

import asyncio
import json
import sys

from collabkit import FAST_PIN_HASHER, SECRET
from voxcast.gateway.collab import Identity, SessionEnded, SessionHub
from voxcast.gateway.collab.redis_bus import RedisBus


async def main(url: str, session_id: str, token: str, user_id: str) -> None:
    bus = RedisBus(url)
    hub = SessionHub(bus, SECRET, pin_hasher=FAST_PIN_HASHER)
    me = Identity.user(user_id, user_id)
    viewer = await hub.join(session_id, me, await hub.redeem(token, user=me))
    try:
        while True:
            print(json.dumps(await viewer.receive()), flush=True)
    except SessionEnded:
        pass
    finally:
        await hub.close()
        await bus.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
