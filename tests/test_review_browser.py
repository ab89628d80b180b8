"""The review app in a real headless browser (Debian's chromium, driven by Playwright with the system
browser; nothing downloaded at run time): log in, open the queue, open a note, see the highlighted evidence, reject
a code, accept the rest, attest, export, verify the chain. Skipped, with the reason, where the browser is missing."""

from __future__ import annotations

import csv
import io
import shutil
import socket
import threading
import time

import pytest
from review_support import PASSWORD, review_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium on PATH (apt install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tiny, tmp_path):
    import uvicorn

    app, log, encounters = review_app(tiny, tmp_path, secret="browser-test")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", log, encounters, tmp_path
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium.new_page(viewport={"width": 1280, "height": 1000})
        chromium.close()


def test_a_coder_reviews_a_note_in_the_browser(served, browser, tmp_path):
    url, log, encounters, _ = served
    page = browser
    page.goto(url + "/")
    assert page.url.endswith("/login")  # no anonymous page
    page.fill("#name", "alice")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("#queue")
    page.screenshot(path=str(tmp_path / "queue.png"))
    routed = [e for e in encounters.values() if e.prediction["review"]["required"] and len(e.suggested) >= 2]
    encounter = routed[0]
    page.click(f"#queue >> text={encounter.note_id}")
    page.wait_for_selector("#note")
    marked = {code for m in page.query_selector_all("#note mark") for code in m.get_attribute("data-codes").split()}
    evidenced = {c["code"] for c in encounter.prediction["codes"] if c["evidence"]}
    assert evidenced <= marked
    page.screenshot(path=str(tmp_path / "note.png"))
    (_, rejected), *kept = encounter.suggested
    for code, action in [(rejected, "reject"), *((code, "accept") for _, code in kept)]:
        row = f'[id="code-{code}"]'  # codes hold dots: an attribute selector, not #id
        page.select_option(f"{row} select[name=action]", action)
        page.fill(f"{row} input[name=reason]", "checked against the note")
        with page.expect_navigation():  # the page the form posted to replaces this one
            page.click(f"{row} .decide")
    assert "rejected" in page.get_attribute(f'[id="code-{rejected}"]', "class")
    with page.expect_navigation():
        page.click("#attest")
    assert "Released" in page.inner_text("#released")
    import httpx  # the export is a download: fetched with the browser's own session cookie

    session = {c["name"]: c["value"] for c in page.context.cookies()}
    exported = list(csv.DictReader(io.StringIO(httpx.get(url + "/export.csv", cookies=session).text)))
    assert {r["code"] for r in exported} == {code for _, code in kept} and rejected not in {r["code"] for r in exported}
    assert log.verify().intact and [r["action"] for r in log.rows()][-1] == "attest"
    assert (tmp_path / "queue.png").stat().st_size > 1000 and (tmp_path / "note.png").stat().st_size > 1000
