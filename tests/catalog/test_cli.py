"""`voxcast import`, `voxcast ls` (local and remote) on the demo study."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxcast.cli import main


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def _check_ls(series: list[dict], demo_study) -> None:
    by_uid = {s["series_uid"]: s for s in series}
    for uid, want, units in [(demo_study.ct_series_uid, demo_study.ct, "HU"),
                             (demo_study.pet_series_uid, demo_study.pet, "SUVbw")]:  # fmt: skip
        got = by_uid[uid]
        assert got["study_uid"] == demo_study.study_uid
        assert got["patient_id"] == demo_study.patient.patient_id
        assert got["instances"] == want.shape[0]
        assert got["units"] == units
        volume = got["volume"]
        assert set(volume) == {"shape", "spacing_mm", "origin_lps", "direction"}
        assert volume["shape"] == list(want.shape)
        np.testing.assert_allclose(volume["spacing_mm"], want.spacing, atol=1e-5)
        np.testing.assert_allclose(volume["origin_lps"], want.origin, atol=1e-4)
        np.testing.assert_allclose(volume["direction"], want.direction, atol=1e-6)
    assert by_uid[demo_study.ct_series_uid]["modality"] == "CT"
    assert by_uid[demo_study.pet_series_uid]["modality"] == "PT"


def test_import_and_ls_json(capsys, demo_study):
    assert main(["import", str(demo_study.out_dir), "--json"]) == 0
    results = _lines(capsys)
    assert len(results) == len(demo_study.ct_paths) + len(demo_study.pet_paths)
    assert {r["status"] for r in results} == {"indexed"}
    assert set(results[0]) >= {"path", "status", "series_uid"}
    assert {r["series_uid"] for r in results} == {demo_study.ct_series_uid, demo_study.pet_series_uid}

    assert main(["import", str(demo_study.out_dir / "CT" / demo_study.ct_paths[0].name), "--json"]) == 0
    (again,) = _lines(capsys)
    assert again["status"] == "duplicate"

    assert main(["ls", "--json"]) == 0
    _check_ls(_lines(capsys), demo_study)
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert f"volume {'x'.join(map(str, demo_study.pet.shape))} @ " in out and "SUVbw" in out


def test_import_rejections_in_json(capsys, src):
    (src / "a.txt").write_text("nope")
    assert main(["import", str(src / "a.txt"), str(src / "gone.dcm"), "--json"]) == 0
    rows = _lines(capsys)
    assert [r["status"] for r in rows] == ["rejected", "rejected"]
    assert rows[0]["reason"].startswith("not DICOM") and rows[0]["series_uid"] is None
    assert rows[1] == {"path": str(src / "gone.dcm"), "status": "rejected",
                       "reason": "no such file or directory", "series_uid": None}  # fmt: skip


def test_remote_import_and_ls(capsys, server, demo_study):
    assert main(["import", str(demo_study.out_dir), "--json", "--catalog", server.target]) == 0
    results = _lines(capsys)
    assert len(results) == len(demo_study.ct_paths) + len(demo_study.pet_paths)
    assert {r["status"] for r in results} == {"indexed"}
    assert main(["ls", "--json", "--catalog", server.target]) == 0
    _check_ls(_lines(capsys), demo_study)


def test_unreachable_catalog_is_one_line_error(capsys, src):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from voxcast.catalog import cli

    with pytest.raises(Exception, match="no catalog service answers"):
        cli._open(f"127.0.0.1:{port}", timeout=0.5)


def test_serve_catalog_command(tmp_path):
    """`voxcast serve catalog --port N` answers health checks and stops cleanly on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from voxcast.catalog.client import CatalogClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VOXCAST_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "voxcast.cli", "serve", "catalog", "--port", str(port),
                             "--host", "127.0.0.1"], env=env)  # fmt: skip
    try:
        with CatalogClient(f"127.0.0.1:{port}", timeout=10) as client:
            client.wait_ready(timeout=30)
            assert client.health() == "SERVING"
            assert client.search_studies() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
