"""Two replicas as two processes on one real Redis: what the presenter does in this process reaches
viewers in other processes, in the same order, and the owner ending the session ends it there."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from collabkit import CT, STUDY, events_until, make_hubs, run, view
from voxcast.gateway.collab import Identity

OWNER = Identity.user("owner", "Dr Owner")
VIEWER = Path(__file__).with_name("replica_viewer.py")


async def read_lines(proc) -> list[dict]:
    out = []
    while line := await proc.stdout.readline():
        out.append(json.loads(line))
    return out


def test_events_cross_processes_in_order(redis_url):
    async def scenario():
        (a, _b), close = await make_hubs("redis", redis_url)
        procs = []
        try:
            sid = await a.create_session(OWNER, STUDY, [CT])
            owner = await a.join(sid, OWNER)
            token = await owner.invite("user")
            for name in ("remote1", "remote2"):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, str(VIEWER), redis_url, sid, token, name, stdout=asyncio.subprocess.PIPE
                )
                procs.append(proc)
            readers = [asyncio.create_task(read_lines(p)) for p in procs]
            # Wait until both have joined.
            joined = set()
            while joined != {"u:remote1", "u:remote2"}:
                message = await asyncio.wait_for(owner.receive(), 30)
                if message["type"] == "joined":
                    joined.add(message["actor"])
            for i in range(20):
                await owner.send({"type": "viewport", "viewport_id": "ax", "state": view(i)})
                await owner.send({"type": "pointer", "viewport_id": "ax", "point": [i, 0, 0]})
            arrow = {"kind": "arrow", "viewport_id": "ax", "tip": [0, 0, 0], "tail": [1, 1, 1], "text": "x"}
            await owner.send({"type": "annotate", "annotation": arrow})
            await owner.send({"type": "hand_over", "to": "u:remote1"})
            ended = await owner.send({"type": "end"})
            mine = {e["seq"]: e for e in await events_until(owner, ended["seq"])}
            for reader in readers:
                lines = await asyncio.wait_for(reader, 30)
                assert lines[0]["type"] == "state"
                events = lines[1:]
                seqs = [e["seq"] for e in events]
                assert seqs == list(range(lines[0]["seq"] + 1, ended["seq"] + 1))
                assert events[-1]["type"] == "ended"
                assert all(e == mine[e["seq"]] for e in events if e["seq"] in mine)
                assert [e["state"]["window_center"] for e in events if e["type"] == "viewport"][-1] == 19
            for proc in procs:
                assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await close()

    run(scenario(), timeout=90)
