"""End to end in Firefox: `voxcast up --demo` on a free port, Debian's firefox-esr driven through WebDriver
BiDi by puppeteer-core (tests/gateway/firefox/e2e.mjs, never a browser download): sign in, open the demo
CT, see rendered pixels, scroll through axial slices, window/level with a drag, open a share link as a
guest, no page errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_browser import ARTIFACTS, PIXEL_STATS, stack_up  # noqa: F401  (stack_up is a fixture)

pytestmark = pytest.mark.slow

FIREFOX = Path("/usr/bin/firefox-esr")
SCRIPT_DIR = Path(__file__).resolve().parent / "firefox"


def _firefox() -> Path:
    """Debian's firefox-esr, installed here when missing and allowed (CI runs scripts/system-deps.sh)."""
    if not FIREFOX.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "firefox-esr"], check=False, timeout=900)
    if not FIREFOX.exists():
        pytest.skip("no /usr/bin/firefox-esr (apt-get install firefox-esr)")
    return FIREFOX


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("no node/npm (apt-get install npm)")
    if not (SCRIPT_DIR / "node_modules" / "puppeteer-core").is_dir():
        # The pinned driver from package-lock.json; puppeteer must not fetch a browser of its own.
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=SCRIPT_DIR,
            env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"npm ci in {SCRIPT_DIR} failed:\n{result.stdout}\n{result.stderr}"
    return node


def test_viewer_in_firefox(stack_up):  # noqa: F811
    firefox = _firefox()
    node = _node()
    url, password = stack_up
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "viewer-firefox.png"
    screenshot.unlink(missing_ok=True)
    result = subprocess.run(
        [node, str(SCRIPT_DIR / "e2e.mjs"), url, "admin", password, str(screenshot)],
        cwd=SCRIPT_DIR,
        env={**os.environ, "FIREFOX": str(firefox), "PIXEL_STATS": PIXEL_STATS},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, f"the viewer failed in Firefox:\n{result.stderr[-4000:]}"
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["browser"].startswith("firefox/"), seen["browser"]
    assert set(seen["stats"]) == {"ax", "co", "sa", "3d"}
    assert all(stats["std"] > 5 for stats in seen["stats"].values()), seen["stats"]
    assert seen["slice"][0] != seen["slice"][1], seen["slice"]
    assert seen["levels"][0] != seen["levels"][1], seen["levels"]
    assert "guest_viewed" in seen["timings"], seen["timings"]
    assert screenshot.stat().st_size > 0
