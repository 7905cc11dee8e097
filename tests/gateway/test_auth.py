"""Accounts, share links (expiry, PIN, revocation, one study only) and the audit log."""

from __future__ import annotations

import io
import sys

import httpx
import pytest
from voxcast.gateway.auth.store import AuthError, Store

from .conftest import PASSWORD

pytestmark = pytest.mark.slow


def test_login(stack):
    with httpx.Client(base_url=stack.url) as client:
        assert (
            client.post("/api/auth/login", json={"username": "admin", "password": "wrong"}).status_code == 401
        )
        assert client.post("/api/auth/login", json={"username": "nobody", "password": "x"}).status_code == 401
        assert client.get("/api/studies").status_code == 401
        bad = client.get("/api/studies", headers={"Authorization": "Bearer abc"})
        assert bad.status_code == 401 and bad.json()["detail"]["code"] == "unauthorized"
        r = client.post("/api/auth/login", json={"username": "doctor", "password": PASSWORD})
        assert r.status_code == 200 and r.json()["user"]["role"] == "clinician"
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert me.json() == {"name": "user:doctor", "role": "clinician", "study_uid": None}
        assert client.get("/api/auth/mode").json() == {"sign_in_required": True}


def test_share_link_with_pin_sees_one_study_read_only_until_revoked(stack):
    study, other = stack.study.study_uid, stack.other_study.study_uid
    with stack.client("doctor") as doctor:
        r = doctor.post("/api/shares", json={"study_uid": study, "expires_minutes": 60, "pin": "4321"})
        assert r.status_code == 201, r.text
        link = r.json()
        assert link["has_pin"] and link["active"] and link["url"].endswith(f"#/share/{link['token']}")
        assert (
            doctor.post("/api/shares", json={"study_uid": "1.2.3", "expires_minutes": 60}).status_code == 404
        )
        assert doctor.post("/api/shares", json={"study_uid": study, "expires_minutes": 0}).status_code == 422
    with httpx.Client(base_url=stack.url) as anonymous:
        assert anonymous.get(f"/api/shares/{link['token']}/info").json()["pin_required"] is True
        assert anonymous.get("/api/shares/not-a-link/info").status_code == 401
        assert anonymous.post(f"/api/shares/{link['token']}/open", json={}).status_code == 401
        assert anonymous.post(f"/api/shares/{link['token']}/open", json={"pin": "0000"}).status_code == 401
        assert anonymous.post("/api/shares/not-a-link/open", json={"pin": "4321"}).status_code == 401
        opened = anonymous.post(f"/api/shares/{link['token']}/open", json={"pin": "4321"})
        assert opened.status_code == 200
        guest = {"Authorization": f"Bearer {opened.json()['access_token']}"}
        assert [s["study_uid"] for s in anonymous.get("/api/studies", headers=guest).json()] == [study]
        assert anonymous.get(f"/api/studies/{study}/series", headers=guest).status_code == 200
        assert anonymous.get(f"/api/studies/{other}/series", headers=guest).status_code == 404
        assert (
            anonymous.get(f"/api/series/{stack.other_study.ct_series_uid}", headers=guest).status_code == 404
        )
        assert (
            anonymous.post("/api/upload", headers=guest, files=[("files", ("a.dcm", b"x"))]).status_code
            == 403
        )
        assert anonymous.post("/api/shares", headers=guest, json={"study_uid": study}).status_code == 403
        assert anonymous.get(f"/api/studies/{study}/download", headers=guest).status_code == 403
        with stack.client("admin") as admin:  # only the creator or an admin revokes
            revoked = admin.delete(f"/api/shares/{link['id']}")
            assert revoked.status_code == 200 and not revoked.json()["active"]
        r = anonymous.get(f"/api/studies/{study}/series", headers=guest)
        assert r.status_code == 401 and "revoked" in r.json()["detail"]["message"]
        assert anonymous.post(f"/api/shares/{link['token']}/open", json={"pin": "4321"}).status_code == 401


def test_only_the_creator_or_an_admin_lists_and_revokes(stack):
    with stack.client("admin") as admin:
        link = admin.post(
            "/api/shares", json={"study_uid": stack.study.study_uid, "expires_minutes": 5}
        ).json()
    with stack.client("doctor") as doctor:
        assert link["id"] not in [s["id"] for s in doctor.get("/api/shares").json()]
        assert doctor.delete(f"/api/shares/{link['id']}").status_code == 404
    with stack.client("admin") as admin:
        assert link["id"] in [s["id"] for s in admin.get("/api/shares").json()]


def test_expired_link_is_refused(stack):
    store = Store.from_settings(stack.settings)
    new = store.create_share(stack.study.study_uid, 1, 1, None)
    from datetime import timedelta

    with store.session() as s, s.begin():
        link = s.get(type(new.link), new.link.id)
        link.expires_at = link.created_at - timedelta(minutes=1)
    with pytest.raises(AuthError, match="expired"):
        store.find_share(new.token)


def test_audit_log_records_study_access(stack):
    study = stack.study.study_uid
    with stack.client("doctor") as doctor:
        doctor.get(f"/api/studies/{study}/series")
        assert doctor.get("/api/audit").status_code == 403
    with stack.client("admin") as admin:
        entries = admin.get("/api/audit", params={"study_uid": study}).json()
    opened = [e for e in entries if e["principal"] == "user:doctor" and e["action"] == "open"]
    assert opened and opened[0]["remote"].startswith("127.0.0.1:")
    assert {e["study_uid"] for e in entries} == {study}


def test_user_add_command(monkeypatch, capsys):
    from voxcast.cli import main
    from voxcast.config import get_settings

    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    assert main(["user", "add", "carol", "--role", "admin", "--password-stdin"]) == 0
    assert "carol" in capsys.readouterr().out
    store = Store.from_settings(get_settings())
    assert store.authenticate("carol", "a-long-password").role == "admin"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    assert main(["user", "add", "carol", "--password-stdin"]) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["user", "add", "dave", "--password-stdin"]) == 2
    assert "at least 8" in capsys.readouterr().err


def test_open_loopback_gateway_needs_no_token(stack):
    import asyncio

    from voxcast.gateway.app import create_app

    from .conftest import GatewayThread, Viewer

    gateway = GatewayThread(create_app(stack.settings, open_access=True))
    url = gateway.start()
    try:
        with httpx.Client(base_url=url) as client:
            assert client.get("/api/auth/mode").json() == {"sign_in_required": False}
            assert client.get("/api/auth/me").json()["role"] == "admin"
            assert client.get("/api/studies").status_code == 200

        async def go():
            import websockets

            async with websockets.connect(url.replace("http", "ws") + "/ws") as ws:
                ready = await Viewer(ws).event("ready", timeout=10)
                assert ready["user"]["name"] == "local"

        asyncio.run(go())
    finally:
        gateway.stop()


def test_open_access_only_on_loopback(capsys):
    from voxcast.cli import main

    assert main(["up", "--open-loopback", "--host", "0.0.0.0"]) == 2
    assert "127.0.0.1" in capsys.readouterr().err


def test_revoked_link_closes_the_guest_viewer(stack):
    import asyncio

    import websockets
    from voxcast.gateway.errors import WS_4401_UNAUTHORIZED

    from .conftest import Viewer, ws_connect

    with stack.client("doctor") as doctor:
        link, guest = stack.share_with_guest(doctor, stack.study.study_uid)

        async def go():
            async with ws_connect(stack, guest) as ws:
                viewer = Viewer(ws)
                await viewer.event("ready")
                assert doctor.delete(f"/api/shares/{link['id']}").status_code == 200
                await viewer.send(type="open", viewport="a", series_uid=stack.study.ct_series_uid)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await viewer.next(10)
                assert closed.value.rcvd.code == WS_4401_UNAUTHORIZED

        asyncio.run(go())
