"""/ws/session in the gateway's app (open access, in-process), over the real catalog and render service."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from voxcast.config import Settings


def test_a_session_over_the_gateway_websocket(render_service, tmp_path):
    from voxcast.gateway.app import create_app
    from voxcast.gateway.ws.sender import unpack_frame

    demo = render_service.demo
    settings = Settings(
        home=tmp_path, catalog_addr=render_service.catalog_addr, render_addrs=render_service.addr
    )
    app = create_app(settings, open_access=True)
    centre = [float(c) for c in demo.ct.center]
    state = {
        "series_uid": demo.ct_series_uid,
        "plane": {"center": centre, "right": [1, 0, 0], "down": [0, 1, 0]},
        "width": 48,
        "height": 48,
    }
    with TestClient(app) as client, client.websocket_connect(f"/ws/session?study={demo.study_uid}") as ws:
        first = ws.receive_json()
        assert first["type"] == "session.state"
        assert demo.ct_series_uid in first["state"]["series"]
        ws.send_json({"type": "session.viewport", "viewport_id": "ax", "state": state})
        ws.send_json({"type": "session.layout", "layout": {"rows": 9}})
        seen, header = [], None
        while header is None or header["rung"] != "lossless" or "session.error" not in seen:
            message = ws.receive()
            if message.get("bytes") is not None:
                header, data = unpack_frame(message["bytes"])
                assert header["viewport"] == "ax" and data
            else:
                seen.append(json.loads(message["text"])["type"])
        assert "session.viewport" in seen
        assert (header["width"], header["encoding"], header["labels"]["top"]) == (48, "png", "A")
        ws.send_json({"type": "session.end"})
        while True:
            message = ws.receive()
            if message.get("text") and json.loads(message["text"])["type"] == "session.ended":
                break
        assert app.state.sessions is not None  # made on first use
