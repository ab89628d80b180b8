"""The review app in a real headless browser (Debian's chromium and chromium-driver, driven by Selenium; nothing
downloaded at run time): log in, open the queue, open a note, see the highlighted evidence, reject a code, accept
the rest, attest, export, verify the chain. Skipped, with the reason, where the browser is not installed."""

from __future__ import annotations

import csv
import io
import shutil
import socket
import threading
import time

import pytest
from review_support import PASSWORD, review_app

CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="no chromium and chromedriver on PATH (apt install chromium chromium-driver)"
)


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
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_a_coder_reviews_a_note_in_the_browser(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)

    url, log, encounters, _ = served
    browser.get(url + "/")
    assert browser.current_url.endswith("/login")  # no anonymous page
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    queue = wait.until(shown.presence_of_element_located((By.ID, "queue")))
    browser.save_screenshot(str(tmp_path / "queue.png"))
    routed = [e for e in encounters.values() if e.prediction["review"]["required"] and len(e.suggested) >= 2]
    encounter = routed[0]
    queue.find_element(By.LINK_TEXT, encounter.note_id).click()
    wait.until(shown.presence_of_element_located((By.ID, "note")))
    marks = browser.find_elements(By.CSS_SELECTOR, "#note mark")
    evidenced = {c["code"] for c in encounter.prediction["codes"] if c["evidence"]}
    assert evidenced <= {code for m in marks for code in m.get_attribute("data-codes").split()}
    browser.save_screenshot(str(tmp_path / "note.png"))
    (_, rejected), *kept = encounter.suggested
    for code, action in [(rejected, "reject"), *((code, "accept") for _, code in kept)]:
        row = browser.find_element(By.ID, f"code-{code}")
        Select(row.find_element(By.NAME, "action")).select_by_value(action)
        row.find_element(By.NAME, "reason").send_keys("checked against the note")
        row.find_element(By.CLASS_NAME, "decide").click()
        wait.until(shown.staleness_of(row))  # the page the form posted to has replaced this one
    assert "rejected" in browser.find_element(By.ID, f"code-{rejected}").get_attribute("class")
    browser.find_element(By.ID, "attest").click()
    assert "Released" in wait.until(shown.presence_of_element_located((By.ID, "released"))).text
    import httpx  # the export is a download: fetched with the browser's own session cookie

    session = {c["name"]: c["value"] for c in browser.get_cookies()}
    exported = list(csv.DictReader(io.StringIO(httpx.get(url + "/export.csv", cookies=session).text)))
    assert {r["code"] for r in exported} == {code for _, code in kept} and rejected not in {r["code"] for r in exported}
    assert log.verify().intact and [r["action"] for r in log.rows()][-1] == "attest"
    assert (tmp_path / "queue.png").stat().st_size > 1000 and (tmp_path / "note.png").stat().st_size > 1000
