"""End to end in a real browser: `voxcast up --demo` on a free port, Debian's Chromium driven by
Playwright (never `playwright install`): sign in, open the demo CT, see rendered pixels, scroll."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from voxcast.testing import free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
]


def _chromium() -> Path:
    """Debian's chromium, installed here when missing and allowed (CI runs scripts/system-deps.sh)."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def stack_up(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "voxcast.cli", "up", "--demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "up.log", "w"),  # noqa: SIM115
        text=True,
        env={**os.environ, "VOXCAST_HOME": str(tmp_path / "home")},
    )
    try:
        password = None
        for line in process.stdout:
            found = re.search(r"first admin: username (\S+)\s+password (\S+)", line)
            if found:
                password = found.group(2)
                break
        assert password, "voxcast up printed no first admin: " + (tmp_path / "up.log").read_text()[-2000:]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway did not come up"
            time.sleep(0.3)
        yield url, password
    finally:
        children = _children(process.pid)
        process.terminate()
        process.wait(30)
    # `voxcast up` stops its catalog and render processes when it is stopped.
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "voxcast up left processes behind"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


PIXEL_STATS = """(el) => {
  const c = el.querySelector('canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = 0, h = 0;
  for (let i = 0; i < d.length; i += 4) { const v = d[i] + d[i + 1] + d[i + 2]; sum += v; sq += v * v; n++;
    h = (h * 31 + v) >>> 0; }
  const mean = sum / n;
  return { std: Math.sqrt(sq / n - mean * mean), hash: h, width: c.width };
}"""


def share_link(url: str, password: str, pin: str) -> str:
    """The admin's share link, with a PIN, to the first study of the stack (over the REST API)."""
    login = httpx.post(url + "/api/auth/login", json={"username": "admin", "password": password})
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    study_uid = httpx.get(url + "/api/studies", headers=admin).json()[0]["study_uid"]
    share = httpx.post(
        url + "/api/shares", headers=admin, json={"study_uid": study_uid, "expires_minutes": 10, "pin": pin}
    )
    return share.json()["url"]


def test_viewer_in_chromium(stack_up):
    from playwright.sync_api import sync_playwright

    url, password = stack_up
    executable = _chromium()
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url + "/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.click("tr[data-study]")
        page.click(".series-card[data-modality=CT]")
        for vp in ("ax", "co", "sa", "3d"):
            page.wait_for_selector(f".viewport[data-viewport='{vp}'][data-rung]", timeout=120_000)
        page.wait_for_selector(".viewport[data-viewport=ax][data-rung=lossless]", timeout=120_000)
        for vp in ("ax", "co", "sa", "3d"):
            stats = page.eval_on_selector(f".viewport[data-viewport='{vp}']", PIXEL_STATS)
            assert stats["std"] > 5, f"viewport {vp} looks blank: {stats}"
        axial = page.locator(".viewport[data-viewport=ax]")
        before_text = axial.locator(".info-bl").text_content()
        before = page.eval_on_selector(".viewport[data-viewport=ax]", PIXEL_STATS)
        version = int(axial.get_attribute("data-version"))
        box = axial.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(4):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(50)
        page.wait_for_function(
            f"""() => {{ const e = document.querySelector('.viewport[data-viewport=ax]');
                return +e.dataset.version > {version} && e.dataset.rung === 'lossless'; }}""",
            timeout=60_000,
        )
        after_text = axial.locator(".info-bl").text_content()
        after = page.eval_on_selector(".viewport[data-viewport=ax]", PIXEL_STATS)
        assert before_text != after_text, (before_text, after_text)
        assert after["hash"] != before["hash"], "the axial image did not change when scrolling"
        # W/L reads the window the frames were made with: CT's default, then the "auto" preset
        # (key 0) as the render service resolved it from the volume's percentiles.
        assert axial.locator(".info-br").text_content().startswith("W 400 L 40 ")
        page.keyboard.press("0")
        page.wait_for_function(
            """() => { const t = document.querySelector('.viewport[data-viewport=ax] .info-br').textContent;
                return /^W \\d+ L -?\\d+ /.test(t) && !t.startsWith('W 400 L 40 '); }""",
            timeout=60_000,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer-chromium.png"))

        # A share link with a PIN lands a guest on that study only, read-only.
        guest = browser.new_context().new_page()
        guest.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        guest.goto(share_link(url, password, pin="2468"))
        guest.fill("input[name=pin]", "2468")
        guest.click("button[type=submit]")
        guest.wait_for_selector(".series-card[data-modality=CT] img[src]", timeout=60_000)
        assert guest.locator("text=◀ Studies").count() == 0
        assert "(guest)" in guest.locator("#whoami").text_content()
        guest.click(".series-card[data-modality=CT]")
        guest.wait_for_selector(".viewport[data-viewport='ax'][data-rung]", timeout=120_000)
        assert guest.locator("text=Share…").count() == 0
        browser.close()
    assert problems == [], problems
