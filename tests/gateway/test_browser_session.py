"""A shared session in two real browsers (Debian's Chromium driven by Playwright, as test_browser.py):
the presenter starts a session on the demo CT and hands its invitation link to a second signed-in
user; the follower sees the presenter's scrolling, asks for control, gets it, and drives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .test_browser import ARTIFACTS, BROWSER_ARGS, PIXEL_STATS, _chromium, share_link, stack_up  # noqa: F401

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


def _page(browser, problems: list[str], who: str):
    """A page in a browser context of its own (a person), whose console errors land in `problems`."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.on("console", lambda m: problems.append(f"{who}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{who}: {e}"))
    return page


def _start_session(browser, problems: list[str], who: str, url: str, password: str):
    """A page of its own for `who`, on the viewer's start page: sign in as admin, open the demo CT
    and start a session on it."""
    page = _page(browser, problems, who)
    page.goto(url + "/")
    _sign_in(page, "admin", password)
    page.click("tr[data-study]")
    page.click(".series-card[data-modality=CT]")
    page.wait_for_selector(f"{AXIAL}[data-rung=lossless]", timeout=120_000)
    page.click("text=Start session")
    return page


def _point(page) -> None:
    """Turn the laser pointer on and move it over the middle of the axial view."""
    page.check(".session-panel .pointer-toggle")
    box = page.locator(AXIAL).bounding_box()
    for dx in (0, 10, 20):
        page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
        page.wait_for_timeout(50)


def _scroll(page, slices: int) -> str:
    """Scroll the axial view (negative: back); its label once the scrolled view has rendered losslessly."""
    version = int(page.locator(AXIAL).get_attribute("data-version"))
    box = page.locator(AXIAL).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(abs(slices)):
        page.mouse.wheel(0, 120 if slices > 0 else -120)
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

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(_chromium()), args=BROWSER_ARGS)
        presenter = _start_session(browser, problems, "presenter", url, password)
        link = presenter.wait_for_selector(".session-panel .invite-link", timeout=30_000).text_content()
        assert "#session=" in link and "&invite=" in link, link

        # The invitation opened before signing in: sign in, then land in the session.
        follower = _page(browser, problems, "follower")
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
        _point(presenter)
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

        # Someone on a share link of this study opens the signed-in users' invitation: they give a
        # name (no PIN: the invitation is not a guest one) and join as a guest.
        visitor = _page(browser, problems, "share-link guest")
        visitor.goto(share_link(url, password, pin="2468"))
        visitor.fill("input[name=pin]", "2468")
        visitor.click("button[type=submit]")
        visitor.wait_for_selector(".series-card[data-modality=CT]", timeout=60_000)
        on_the_link = visitor.locator("#whoami").text_content()
        visitor.goto(link)
        visitor.wait_for_selector("input[name=name]", timeout=30_000)
        assert visitor.locator("input[name=pin]").count() == 0
        visitor.fill("input[name=name]", "Dr Share")
        visitor.click("button[type=submit]")
        visitor.wait_for_selector(f"{AXIAL}[data-session-sequence]", timeout=120_000)
        presenter.wait_for_selector(".session-panel li:has-text('Dr Share (guest)')", timeout=30_000)

        # The owner ends the session for everyone.
        presenter.on("dialog", lambda dialog: dialog.accept())
        presenter.click(".session-panel button:has-text('End session')")
        for page in (presenter, follower, visitor):
            page.wait_for_selector(".session-panel:has-text('the session has ended')", timeout=30_000)
        # The session's token ended with it: the share-link guest is back on the link's token and its
        # study, not sent to a sign-in page they cannot use.
        visitor.wait_for_function(
            "(who) => document.getElementById('whoami').textContent === who", arg=on_the_link, timeout=30_000
        )
        visitor.click("button:has-text('Studies')")
        visitor.wait_for_selector(".series-card[data-modality=CT]", timeout=60_000)
        assert "#/study/" in visitor.url and visitor.locator("input[name=password]").count() == 0, visitor.url
        # A damaged invitation link says so.
        follower.goto(url + "/#session=abc&invite=not-a-token")
        follower.wait_for_selector(".card.error:has-text('invitation')", timeout=30_000)
        browser.close()
    assert problems == [], problems


def _click_at(page, dx: float, dy: float) -> None:
    """A click on the axial view, (dx, dy) pixels from its centre."""
    box = page.locator(AXIAL).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)


def _annotations(page) -> list[dict]:
    """The annotations the axial view draws, as it lists them: [{id, kind, label}]."""
    return page.eval_on_selector(AXIAL, "e => JSON.parse(e.dataset.annotations || '[]')")


def _wait_annotations(page, predicate_js: str, what: str) -> None:
    try:
        page.wait_for_function(
            f"""() => {{ const e = document.querySelector('{AXIAL}');
                const list = JSON.parse((e && e.dataset.annotations) || '[]');
                return ({predicate_js})(list); }}""",
            timeout=30_000,
        )
    except Exception as exc:  # noqa: BLE001 - say what is drawn
        raise AssertionError(f"{what}: the axial view draws {_annotations(page)}") from exc


def test_guest_with_a_pin_annotations_and_a_reload(stack_up):  # noqa: F811 - the imported fixture
    """A guest without an account joins with the invitation's PIN (a wrong one first); the presenter's
    ellipse ROI and text arrow reach the guest with the server's measurement; a deleted annotation
    goes for everyone; the owner reloads the page and is back in the session, driving."""
    from playwright.sync_api import sync_playwright

    url, password = stack_up
    problems: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(_chromium()), args=BROWSER_ARGS)
        owner = _start_session(browser, problems, "owner", url, password)
        owner.wait_for_selector(".session-panel .invite-link[data-kind=user]", timeout=30_000)
        session_url = owner.url
        assert "#session=" in session_url and "&study=" in session_url, session_url

        # A window drag reads in whole numbers.
        box = owner.locator(AXIAL).bounding_box()
        owner.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        owner.mouse.down()
        for step in range(1, 6):
            owner.mouse.move(box["x"] + box["width"] / 2 + 7 * step, box["y"] + box["height"] / 2 + 3 * step)
            owner.wait_for_timeout(40)
        owner.mouse.up()
        owner.wait_for_function(
            f"() => /^W -?\\d+ L -?\\d+ ·/.test(document.querySelector('{AXIAL} .info-br').textContent)",
            timeout=30_000,
        )

        # A guest invitation with a PIN; the guest opens it in a browser of their own.
        owner.click(".session-panel button:has-text('Invite guest')")
        owner.fill(".session-panel input.guest-pin", "2468")
        owner.click(".session-panel button:has-text('Create guest link')")
        box = owner.wait_for_selector(
            ".session-panel .invitation:has(.invite-link[data-kind=guest])", timeout=30_000
        )
        assert "PIN 2468" in box.text_content()
        link = owner.locator(".session-panel .invite-link[data-kind=guest]").text_content()
        guest = _page(browser, problems, "guest")
        guest.goto(link)
        guest.fill("input[name=name]", "Dr Visitor")
        guest.fill("input[name=pin]", "1111")
        guest.click("button[type=submit]")
        guest.wait_for_selector(".card .error:has-text('wrong PIN (4 tries left)')", timeout=30_000)
        guest.fill("input[name=pin]", "2468")
        guest.click("button[type=submit]")
        guest.wait_for_selector(f"{AXIAL}[data-session-sequence]", timeout=120_000)
        assert guest.eval_on_selector(AXIAL, PIXEL_STATS)["std"] > 5, "the guest's axial view is blank"
        guest.wait_for_selector(".session-panel li.presenter:has-text('admin')", timeout=30_000)
        assert "you" in guest.locator(".participants li:has-text('Dr Visitor')").text_content()
        assert guest.locator("#whoami").text_content() == "Dr Visitor (guest)"
        owner.wait_for_selector(".session-panel li:has-text('Dr Visitor (guest)')", timeout=30_000)
        # The guest's laser pointer is named as a guest's, not by the bare name they chose.
        _point(guest)
        owner.wait_for_selector(f"{AXIAL}[data-pointers='Dr Visitor (guest)']", timeout=30_000)
        guest.uncheck(".session-panel .pointer-toggle")
        owner.wait_for_selector(f"{AXIAL}[data-pointers='']", timeout=30_000)
        # Nothing to hand out from a guest's viewer.
        assert guest.locator("text=Start session").count() == 0 and guest.locator("text=Share…").count() == 0

        # The owner scrolls, draws an ellipse ROI (corner to corner) and a text arrow (tip, tail).
        expected = _scroll(owner, 3)
        _wait_label(guest, expected, "the guest did not follow the owner's scroll")
        owner.click(".session-panel button:has-text('Ellipse')")
        _click_at(owner, -40, -30)
        _click_at(owner, 40, 30)
        owner.click(".session-panel button:has-text('Arrow')")
        owner.fill(".session-panel input.arrow-text", "look here")
        _click_at(owner, 0, 0)
        _click_at(owner, 70, -50)
        owner.click(".session-panel button:has-text('Arrow')")  # the tool is put down
        for page in (guest, owner):
            _wait_annotations(
                page,
                "l => l.some(a => a.kind === 'ellipse' && /^mean -?\\d+\\.\\d ± \\d+\\.\\d HU/.test(a.label))"
                " && l.some(a => a.kind === 'arrow' && a.label === 'look here')",
                "the ellipse and the arrow did not reach everyone",
            )
        ellipse = next(a for a in _annotations(guest) if a["kind"] == "ellipse")
        assert (
            guest.locator(f".session-panel li[data-annotation='{ellipse['id']}']")
            .text_content()
            .startswith("Ellipse · mean")
        )
        # Annotations are drawn only on the slice they were made on: gone two slices on, back after.
        _wait_label(guest, _scroll(owner, 2), "the guest did not follow the owner's scroll")
        _wait_annotations(guest, "l => l.length === 0", "annotations are drawn over another slice")
        assert _scroll(owner, -2) == expected, "scrolling back did not come back to the annotated slice"
        _wait_annotations(guest, "l => l.length === 2", "the annotations did not come back with their slice")
        # A guest may delete only their own annotations; the owner deletes the arrow for everyone.
        assert guest.locator(".session-panel .delete-annotation").count() == 0
        owner.click(".session-panel li[data-kind=arrow] .delete-annotation")
        for page in (guest, owner):
            _wait_annotations(
                page,
                "l => l.length === 1 && l[0].kind === 'ellipse'",
                "the deleted arrow is still drawn",
            )
        ARTIFACTS.mkdir(exist_ok=True)
        guest.screenshot(path=str(ARTIFACTS / "session-guest.png"))

        # Detached, the guest looks around alone on its own /ws (its token opens this study).
        guest.click(".session-panel button:has-text('Detach')")
        owner.wait_for_selector(
            ".participants li:has-text('Dr Visitor'):has-text('detached')", timeout=30_000
        )
        guest.wait_for_selector(f"{AXIAL}[data-rung=lossless][data-version]", timeout=60_000)
        assert _scroll(guest, 2) != expected, "a detached guest's scroll did not move its own view"
        guest.click(".session-panel button:has-text('Follow')")
        _wait_label(guest, expected, "following again did not bring the guest the session's view")

        # The owner reloads the page: back in the session, presenting the view it had.
        owner.reload()
        owner.wait_for_selector(".session-panel li.presenter:has-text('admin')", timeout=60_000)
        assert owner.url == session_url
        assert "you" in owner.locator(".participants li:has-text('admin')").text_content()
        _wait_label(owner, expected, "the owner's view after the reload is not the session's")
        _wait_annotations(owner, "l => l.length === 1", "the ellipse is not drawn after the reload")
        guest.wait_for_selector(".participants li:has-text('admin'):not(.gone)", timeout=30_000)
        expected = _scroll(owner, 2)
        _wait_label(guest, expected, "the guest did not follow the reloaded owner's scroll")

        # The session ends, and the guest's token with it; a guest invitation to a new session still
        # lets them in: the old token gives way, and they give a name and the new PIN.
        owner.on("dialog", lambda dialog: dialog.accept())
        owner.click(".session-panel button:has-text('End session')")
        guest.wait_for_selector(".session-panel:has-text('the session has ended')", timeout=30_000)
        owner.click("text=Start session")
        owner.wait_for_selector(".session-panel .invite-link[data-kind=user]", timeout=30_000)
        owner.click(".session-panel button:has-text('Invite guest')")
        owner.fill(".session-panel input.guest-pin", "1357")
        owner.click(".session-panel button:has-text('Create guest link')")
        link = owner.wait_for_selector(
            ".session-panel .invite-link[data-kind=guest]", timeout=30_000
        ).text_content()
        guest.goto(link)
        guest.fill("input[name=name]", "Dr Visitor")
        guest.fill("input[name=pin]", "1357")
        guest.click("button[type=submit]")
        guest.wait_for_selector(f"{AXIAL}[data-session-sequence]", timeout=120_000)
        owner.wait_for_selector(".session-panel li:has-text('Dr Visitor (guest)')", timeout=30_000)
        browser.close()
    assert problems == [], problems
