"""`medcoder serve --audit DB`: every code the HTTP server answers with is a `suggest` entry first.

The same entries as `medcoder predict --audit` (`audit.suggestions.suggestion_entries`), written by an ASGI
layer between the request guard and MLflow's scoring app: it sees the request the guard has checked (the
notes, in order) and the scoring app's answer (one contract line per note, in the same order), appends
the entries, and only then sends the answer. No prediction leaves without its record: when the audit log
cannot be written, the client gets a 500 with a fixed message (`serving.guard` replaces error bodies)
and the predictions are not sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from medcoder.audit.suggestions import suggestion_entries
from medcoder.serving.guard import GUARDED_PATH, ASGIApp, Message, Receive, Scope, Send, send_error

log = logging.getLogger(__name__)


class AuditedInvocations:
    """ASGI middleware writing `suggest` entries for each successful /invocations answer (module docstring).

    `audit` is an `audit.store.AuditLog`; `threshold` and `manifest_sha256` are the served model's
    (`ExportedCoder`), recorded in every entry."""

    def __init__(self, app: ASGIApp, audit: Any, *, threshold: float | None, manifest_sha256: str | None) -> None:
        self.app, self.audit = app, audit
        self.threshold, self.manifest_sha256 = threshold, manifest_sha256

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GUARDED_PATH:
            await self.app(scope, receive, send)
            return
        request = bytearray()

        async def recording() -> Message:
            message = await receive()
            request.extend(message.get("body", b""))
            return message

        held: list[Message] = []

        async def holding(message: Message) -> None:
            held.append(message)

        await self.app(scope, recording, holding)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        if start is not None and int(start["status"]) == 200:
            answer = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            try:
                self._record(bytes(request), answer)
            except Exception as err:  # noqa: BLE001 - any failure to record withholds the answer
                log.error("audit log %s not written (%s): predictions withheld", self.audit.url, type(err).__name__)
                await send_error(send, 500, "the audit log could not be written")
                return
        for message in held:
            await send(message)

    def _record(self, request: bytes, answer: bytes) -> None:
        """Append the entries of one answer: the i-th contract line codes the i-th note of the request."""
        notes = json.loads(request)["inputs"]
        lines = json.loads(answer)["predictions"]
        if len(lines) != len(notes):
            raise ValueError(f"{len(lines)} prediction lines for {len(notes)} notes")
        entries = []
        for note, line in zip(notes, lines, strict=True):
            if "error" in line:
                continue
            if line["id"] != note["id"]:
                raise ValueError("prediction lines out of request order")
            entries += suggestion_entries(line, note["text"], setting=note.get("setting"), threshold=self.threshold,
                                          manifest_sha256=self.manifest_sha256)  # fmt: skip
        self.audit.append(entries)
