"""A shared session in two real browsers (Debian's Chromium driven by Playwright, as test_browser.py):
the presenter starts a session on the demo CT and hands its invitation link to a second signed-in
user; the follower sees the presenter's scrolling, asks for control, gets it, and drives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .test_browser import ARTIFACTS, BROWSER_ARGS, PIXEL_STATS, _chromium, stack_up  # noqa: F401

pytestmark = pytest.mark.slow

AXIAL = ".viewport[data-viewport=ax]"
DOCTOR_PASSWORD = "tumor-board-2468"


def _add_user(home, username: str, password: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "voxcast.cli", "user", "add", username, "--role", "clinician"]
        + ["--password-stdin"],
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "VOXCAST_HOME": str(home)},
        timeout=60,
    )


def _sign_in(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _scroll(page, slices: int) -> str:
    """Scroll the axial view; its label once the scrolled view has rendered losslessly."""
    version = int(page.locator(AXIAL).get_attribute("data-version"))
    box = page.locator(AXIAL).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(slices):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(60)
    page.wait_for_function(
        f"""() => {{ const e = document.querySelector('{AXIAL}');
            return +e.dataset.version > {version} && e.dataset.rung === 'lossless'; }}""",
        timeout=60_000,
    )
    return _label(page)


def _label(page) -> str:
    return page.locator(f"{AXIAL} .info-bl").text_content()


def _wait_label(page, text: str, what: str) -> None:
    try:
        page.wait_for_function(
            "([sel, text]) => document.querySelector(sel + ' .info-bl').textContent === text",
            arg=[AXIAL, text],
            timeout=60_000,
        )
    except Exception as exc:  # noqa: BLE001 - name the step that failed
        raise AssertionError(f"{what}: axial label {_label(page)!r}, expected {text!r}") from exc


def test_shared_session_in_two_browsers(stack_up, tmp_path):  # noqa: F811 - the imported fixture
    from playwright.sync_api import sync_playwright

    url, password = stack_up
    _add_user(tmp_path / "home", "doctor", DOCTOR_PASSWORD)
    problems: list[str] = []

    def watch(browser, who):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.on("console", lambda m: problems.append(f"{who}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"{who}: {e}"))
        return page

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(_chromium()), args=BROWSER_ARGS)
        presenter = watch(browser, "presenter")
        presenter.goto(url + "/")
        _sign_in(presenter, "admin", password)
        presenter.click("tr[data-study]")
        presenter.click(".series-card[data-modality=CT]")
        presenter.wait_for_selector(f"{AXIAL}[data-rung=lossless]", timeout=120_000)
        presenter.click("text=Start session")
        link = presenter.wait_for_selector(".session-panel .invite-link", timeout=30_000).text_content()
        assert "#session=" in link and "&invite=" in link, link

        # The invitation opened before signing in: sign in, then land in the session.
        follower = watch(browser, "follower")
        follower.goto(link)
        follower.wait_for_selector("input[name=username]", timeout=30_000)
        _sign_in(follower, "doctor", DOCTOR_PASSWORD)
        follower.wait_for_selector(f"{AXIAL}[data-session-sequence]", timeout=120_000)
        for page in (presenter, follower):
            page.wait_for_selector(".session-panel li:has-text('doctor')", timeout=30_000)
        assert "presenting" in follower.locator(".session-panel li:has-text('admin')").text_content()
        assert follower.locator("text=Start session").is_hidden()

        # The presenter scrolls: the follower's axial image and slice label follow.
        before = follower.eval_on_selector(AXIAL, PIXEL_STATS)
        expected = _scroll(presenter, 4)
        _wait_label(follower, expected, "the follower did not follow the presenter's scroll")
        follower.wait_for_function(
            f"""(hash) => {{ const c = document.querySelector('{AXIAL} canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let h = 0;
                for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 1] + d[i + 2]) >>> 0;
                return h !== hash; }}""",
            arg=before["hash"],
            timeout=60_000,
        )
        assert follower.eval_on_selector(AXIAL, PIXEL_STATS)["std"] > 5, "the follower's axial view is blank"

        # Control changes hands; the new presenter drives and the old one follows.
        follower.click(".session-panel button:has-text('Request control')")
        try:
            presenter.click(".session-panel button:has-text('Hand over to doctor')", timeout=30_000)
        except Exception as exc:  # noqa: BLE001 - say what each side shows
            panels = [page.locator(".session-panel").text_content() for page in (presenter, follower)]
            raise AssertionError(f"no hand-over offered; presenter, follower panels: {panels}") from exc
        follower.wait_for_selector(".session-panel li.presenter:has-text('doctor')", timeout=30_000)
        presenter.wait_for_selector(".session-panel li.presenter:has-text('doctor')", timeout=30_000)
        follower.wait_for_selector(f"{AXIAL}[data-rung=lossless][data-version]", timeout=60_000)
        expected = _scroll(follower, 3)
        _wait_label(presenter, expected, "the old presenter did not follow the new presenter's scroll")

        # Detached, the old presenter looks around alone; following again brings the session's view back.
        presenter.click(".session-panel button:has-text('Detach')")
        follower.wait_for_selector(".session-panel li:has-text('detached')", timeout=30_000)
        presenter.wait_for_selector(f"{AXIAL}[data-rung=lossless][data-version]", timeout=60_000)
        alone = _scroll(presenter, 2)
        assert alone != expected, "a detached viewer's scroll did not move its own view"
        presenter.click(".session-panel button:has-text('Follow')")
        _wait_label(presenter, expected, "following again did not restore the presenter's view")

        # The presenter's layout is everyone's.
        follower.click("button:has-text('1x2')")
        presenter.wait_for_selector(".grid.l1x2", timeout=30_000)

        # A laser pointer from the follower shows on the presenter's axial view, named.
        presenter.check(".session-panel .pointer-toggle")
        box = presenter.locator(AXIAL).bounding_box()
        for dx in (0, 10, 20):
            presenter.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
            presenter.wait_for_timeout(50)
        follower.wait_for_selector(f"{AXIAL}[data-pointers='admin']", timeout=30_000)

        # A line measurement: two clicks; the server's length in mm reaches both.
        follower.click(".session-panel button:has-text('Measure')")
        box = follower.locator(AXIAL).bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        follower.mouse.click(cx - 60, cy)
        follower.mouse.click(cx + 60, cy)
        for page in (follower, presenter):
            page.wait_for_function(
                f"() => parseFloat(document.querySelector('{AXIAL}').dataset.measurements) > 0",
                timeout=30_000,
            )

        ARTIFACTS.mkdir(exist_ok=True)
        presenter.screenshot(path=str(ARTIFACTS / "session-presenter.png"))
        follower.screenshot(path=str(ARTIFACTS / "session-follower.png"))

        # The owner ends the session for everyone.
        presenter.on("dialog", lambda dialog: dialog.accept())
        presenter.click(".session-panel button:has-text('End session')")
        for page in (presenter, follower):
            page.wait_for_selector(".session-panel:has-text('the session has ended')", timeout=30_000)
        # A damaged invitation link says so.
        follower.goto(url + "/#session=abc&invite=not-a-token")
        follower.wait_for_selector(".card.error:has-text('invitation')", timeout=30_000)
        browser.close()
    assert problems == [], problems
