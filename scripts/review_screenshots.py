"""Screenshots of the review app's queue and note page for the README, in headless Chromium.

    .venv/bin/python scripts/review_screenshots.py --notes NOTES.jsonl --predictions PREDICTIONS.jsonl \
        --note NOTE_ID --out docs/images

Serves the app on the notes and their `medcoder predict` output with a throwaway audit database and account,
logs in, and saves review-queue.png and review-note.png.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from medcoder.audit.store import AuditLog
from medcoder.review.accounts import add_user
from medcoder.review.app import create_review_app
from medcoder.review.work import load_encounters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--note", required=True, help="the note whose page to capture")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(str(Path(tmp) / "audit.db"))
        add_user(log, "coder", "coder", "screenshot-password")
        app = create_review_app(load_encounters(Path(args.notes), Path(args.predictions)), log,
                                Path(tmp) / "corrections.jsonl")  # fmt: skip
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.1)
        try:
            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(executable_path=shutil.which("chromium") or "chromium",
                                                      args=["--no-sandbox", "--disable-dev-shm-usage"])  # fmt: skip
                page = chromium.new_page(viewport={"width": 1200, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/login")
                page.fill("#name", "coder")
                page.fill("#password", "screenshot-password")
                page.click("#login")
                page.wait_for_selector("#queue")
                page.screenshot(path=str(out / "review-queue.png"))
                page.goto(f"http://127.0.0.1:{port}/notes/{args.note}")
                page.screenshot(path=str(out / "review-note.png"))
                chromium.close()
        finally:
            server.should_exit = True
    print(f"wrote {out / 'review-queue.png'} and {out / 'review-note.png'}")


if __name__ == "__main__":
    main()
