"""/ws/session in the gateway's app (open access, in-process), over the real catalog and render service."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

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


PASSWORD = "route-password-1"


@pytest.fixture(scope="module")
def other_study(render_service, tmp_path_factory):
    """A second study (another patient) in the same catalog."""
    from voxcast.catalog.client import CatalogClient

    from voxcast.demo import write_demo_study

    demo = write_demo_study(tmp_path_factory.mktemp("other-demo"), size="small", seed=1)
    with CatalogClient(render_service.catalog_addr) as client:
        results = client.ingest([str(p) for p in demo.ct_paths + demo.pet_paths])
    assert all(r.status != r.REJECTED for r in results), results
    return demo


@pytest.fixture
def signed_in(render_service, tmp_path):
    """The gateway's app with sign-in required, users alice and bob (clinicians), and a client."""
    from voxcast.gateway.app import create_app
    from voxcast.gateway.auth.store import Store

    settings = Settings(
        home=tmp_path, catalog_addr=render_service.catalog_addr, render_addrs=render_service.addr
    )
    store = Store.from_settings(settings)
    for user in ("alice", "bob"):
        store.add_user(user, PASSWORD, "clinician")
    with TestClient(create_app(settings)) as client:
        tokens = {}
        for user in ("alice", "bob"):
            r = client.post("/api/auth/login", json={"username": user, "password": PASSWORD})
            tokens[user] = r.json()["access_token"]
        yield client, tokens


def until(ws, kind: str) -> dict:
    """The next JSON message of type `kind` (frames and other events skipped)."""
    while True:
        message = ws.receive()
        if message.get("text") and (event := json.loads(message["text"]))["type"] == kind:
            return event


def refused(client, url: str) -> dict:
    """The error a /ws/session connection is refused with (then closed)."""
    with client.websocket_connect(url) as ws:
        error = ws.receive_json()
        assert error["type"] == "session.error", error
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008
        return error


def test_guests_join_with_a_pin_and_see_only_the_session_study(signed_in, render_service, other_study):
    client, tokens = signed_in
    study = render_service.demo.study_uid
    with client.websocket_connect(f"/ws/session?token={tokens['alice']}&study={study}") as alice:
        state = alice.receive_json()
        sid, me = state["state"]["session_id"], state["you"]
        # Participants are named by their username; `you` says which one this connection is.
        assert [(p["id"], p["name"]) for p in state["state"]["participants"]] == [(me, "alice")]
        assert "access" not in state  # a signed-in user has their own token
        alice.send_json({"type": "session.invite", "kind": "guest", "pin": "4321", "may_control": False})
        invite = until(alice, "session.invitation")["token"]

        join = f"/ws/session?session={sid}&invite={invite}&name=Dr%20%20Visitor"
        error = refused(client, join + "&pin=1111")
        assert (error["code"], error["field"], error["message"]) == (
            "forbidden",
            "pin",
            "wrong PIN (4 tries left)",
        )
        with client.websocket_connect(join + "&pin=4321") as guest:
            welcome = guest.receive_json()
            assert welcome["type"] == "session.state"
            you = welcome["you"]
            people = {p["id"]: p for p in welcome["state"]["participants"]}
            assert people[you]["name"] == "Dr Visitor" and people[you]["kind"] == "guest"
            assert not people[you]["may_control"] and people[me]["name"] == "alice"
            access = welcome["access"]
            assert access["user"] == {"name": "Dr Visitor", "role": "guest", "study_uid": study}
            joined = until(alice, "session.joined")
            assert joined["participant"]["id"] == you

            # The guest's token opens the session's study, and nothing else.
            auth = {"Authorization": f"Bearer {access['token']}"}
            assert client.get(f"/api/studies/{study}/series", headers=auth).status_code == 200
            # (Another study answers as an unknown one: a guest learns nothing about it.)
            assert client.get(f"/api/studies/{other_study.study_uid}/series", headers=auth).status_code == 404
            bob = {"Authorization": f"Bearer {tokens['bob']}"}
            assert client.get(f"/api/studies/{other_study.study_uid}/series", headers=bob).status_code == 200
            listed = client.get("/api/studies", headers=auth).json()
            assert {s["study_uid"] for s in listed} <= {study}
            assert client.post("/api/shares", headers=auth, json={"study_uid": study}).status_code == 403
            with client.websocket_connect(f"/ws?token={access['token']}") as ws:
                assert until(ws, "ready")["user"]["study_uid"] == study
                ws.send_json({"type": "open", "viewport": "x", "series_uid": other_study.ct_series_uid})
                error = until(ws, "error")
                assert (error["code"], error["field"]) == ("forbidden", "series_uid")
                ws.send_json(
                    {
                        "type": "open",
                        "viewport": "a",
                        "series_uid": render_service.demo.ct_series_uid,
                        "size": [32, 32],
                    }
                )
                assert until(ws, "opened")["viewport"] == "a"

        # The token brings the guest back into the session as the same participant; not into others,
        # nor into a session of its own.
        with client.websocket_connect(f"/ws/session?session={sid}&token={access['token']}") as again:
            back = again.receive_json()
            # ... with a fresh token (a board may sit longer than one token lasts).
            assert back["you"] == you and back["access"]["user"] == access["user"]
            renewed = {"Authorization": f"Bearer {back['access']['token']}"}
            assert client.get(f"/api/studies/{study}/series", headers=renewed).status_code == 200
        error = refused(client, f"/ws/session?session=another&token={access['token']}")
        assert error["field"] == "invite"
        error = refused(client, f"/ws/session?study={study}&token={access['token']}")
        assert error["code"] == "forbidden"

        # Five wrong PINs revoke the invitation, and the fifth says so.
        for left in (3, 2, 1):
            assert (
                refused(client, join + "&pin=0000")["message"]
                == f"wrong PIN ({left} tr{'y' if left == 1 else 'ies'} left)"
            )
        assert "revoked" in refused(client, join + "&pin=0000")["message"]
        assert "revoked" in refused(client, join + "&pin=4321")["message"]

        # The guest's access ends with the session: REST and /ws refuse the token at once, and a
        # /ws opened before the end stops at its next open.
        looking = client.websocket_connect(f"/ws?token={access['token']}")
        detached = looking.__enter__()
        until(detached, "ready")
        alice.send_json({"type": "session.end"})
        until(alice, "session.ended")
        detached.send_json({"type": "open", "viewport": "b", "series_uid": render_service.demo.ct_series_uid})
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                detached.receive_json()
        assert closed.value.code == 4401
        looking.__exit__(None, None, None)
        answer = client.get(f"/api/studies/{study}/series", headers=auth)
        assert answer.status_code == 401 and "ended" in answer.json()["detail"]["message"]
        with client.websocket_connect(f"/ws?token={access['token']}") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4401 and "ended" in closed.value.reason


def test_share_link_guests_join_sessions_on_their_study_only(signed_in, render_service, other_study):
    client, tokens = signed_in
    study = render_service.demo.study_uid
    auth = {"Authorization": f"Bearer {tokens['bob']}"}

    def share_guest(study_uid: str) -> str:
        link = client.post(
            "/api/shares", headers=auth, json={"study_uid": study_uid, "expires_minutes": 30}
        ).json()
        return client.post(f"/api/shares/{link['token']}/open", json={}).json()["access_token"]

    same, other = share_guest(study), share_guest(other_study.study_uid)
    with client.websocket_connect(f"/ws/session?token={tokens['alice']}&study={study}") as alice:
        sid = alice.receive_json()["state"]["session_id"]
        alice.send_json({"type": "session.invite", "kind": "user"})
        invite = until(alice, "session.invitation")["token"]
        # Without an invitation a share link does not enter the session.
        assert refused(client, f"/ws/session?session={sid}&token={same}")["field"] == "invite"
        error = refused(client, f"/ws/session?session={sid}&invite={invite}&token={other}")
        assert error["message"] == "this invitation is for another study than the one your link opens"
        with client.websocket_connect(
            f"/ws/session?session={sid}&invite={invite}&token={same}&name=Reader"
        ) as guest:
            welcome = guest.receive_json()
            me = next(p for p in welcome["state"]["participants"] if p["id"] == welcome["you"])
            assert (me["kind"], me["name"], me["may_control"]) == ("guest", "Reader", False)
            assert welcome["access"]["user"]["study_uid"] == study
            guest.send_json({"type": "session.request_control"})
            assert until(guest, "session.error")["code"] == "forbidden"
            # Its session token is tied to the link: revoking the link ends it too.
            renewed = {"Authorization": f"Bearer {welcome['access']['token']}"}
            assert client.get(f"/api/studies/{study}/series", headers=renewed).status_code == 200
            listed = client.get("/api/shares", headers=auth).json()
            link_id = next(s["id"] for s in listed if s["study_uid"] == study)
            assert client.delete(f"/api/shares/{link_id}", headers=auth).status_code in (200, 204)
            assert client.get(f"/api/studies/{study}/series", headers=renewed).status_code == 401


def test_guest_names_lose_control_and_format_characters():
    from voxcast.gateway.collab.route import guest_name

    # A right-to-left override or a zero-width space could make one name read as another.
    assert guest_name("  Dr\u202e  Who\u200b\n ") == "Dr Who"
    assert guest_name("x" * 200) == "x" * 80
