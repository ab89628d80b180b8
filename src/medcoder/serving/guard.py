"""The request guard in front of the scoring server: nothing reaches the model unchecked, nothing
the client sent comes back in an error, and no error carries a stack trace.

A POST to /invocations must be `application/json`, at most `max_body_bytes`, valid UTF-8 JSON
(nesting deep enough to exhaust the parser is invalid JSON, not a 500), an object `{"inputs":
[record, ...]}` (records are checked one by one by the model, each bad one becomes its own error
entry), and within the work one request may ask for (`inputs.request_problem`). Otherwise the
answer is `{"error_code", "message"}` with 400 (not JSON), 413 (too large), 415 (not JSON content)
or 422 (not a list of records); the message names counts, types and byte positions only.

Any error response the wrapped app still produces (an unexpected failure) is replaced by a fixed
message for its status: MLflow's own error bodies may quote request data or carry `stack_trace`.
The details stay in the server log, which MLflow writes without request bodies.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from medcoder.inference.inputs import (
    DEFAULT_MAX_REQUEST_CHARS,
    DEFAULT_MAX_REQUEST_NOTES,
    max_line_bytes,
    request_problem,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

GUARDED_PATH = "/invocations"
_ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    504: "DEADLINE_EXCEEDED",
}
_REPLACED_MESSAGES = {
    504: "the request took longer than the server's timeout (MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT); "
    "send fewer or shorter notes",
}
_DEFAULT_REPLACED = "the model could not answer this request; the server log has the details"


class RequestRejected(Exception):
    """A request refused before the model: HTTP status and a message without request data."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def check_request(body: bytes, content_type: str, max_notes: int, max_chars: int) -> None:
    """Raise RequestRejected unless `body` is a request the model may see (module docstring)."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise RequestRejected(
            415, 'send Content-Type: application/json with {"inputs": [{"id": ..., "text": ...}, ...]}'
        )
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as err:
        raise RequestRejected(
            400, f"the request body is not valid JSON ({err.msg.removesuffix(' at')} at byte {err.pos})"
        ) from None
    except UnicodeDecodeError as err:
        raise RequestRejected(400, f"the request body is not valid UTF-8 (bad byte at offset {err.start})") from None
    except RecursionError:
        raise RequestRejected(400, "the request body is not valid JSON (nested too deeply)") from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        got = (
            f"an object with {len(payload)} other key(s)"
            if isinstance(payload, dict)
            else f"a JSON {type(payload).__name__}"
        )
        raise RequestRejected(422, f'the request must be a JSON object {{"inputs": [records]}}, got {got}')
    extra = [k for k in payload if k not in ("inputs", "params")]
    if extra:
        raise RequestRejected(
            422, f'the request may only hold "inputs" (and "params"); it has {len(extra)} other key(s)'
        )
    records = payload["inputs"]
    if not isinstance(records, list):
        kind = "null" if records is None else type(records).__name__
        raise RequestRejected(422, f'"inputs" must be a list of records {{id, text, setting?, age?, sex?}}, got {kind}')
    problem = request_problem(records, max_notes, max_chars)
    if problem is not None:
        raise RequestRejected(413, problem)


def _json_response(status: int, message: str) -> tuple[Message, Message]:
    body = json.dumps({"error_code": _ERROR_CODES.get(status, "INTERNAL_ERROR"), "message": message}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class RequestGuard:
    """ASGI middleware: `check_request` on /invocations, and error responses replaced (module docstring)."""

    def __init__(
        self, app: ASGIApp, max_notes: int = DEFAULT_MAX_REQUEST_NOTES, max_chars: int = DEFAULT_MAX_REQUEST_CHARS
    ):
        self.app, self.max_notes, self.max_chars = app, max_notes, max_chars
        self.max_body_bytes = max_line_bytes(max_chars)  # every text at its longest JSON spelling, plus 1 MiB

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] != GUARDED_PATH:
            await self.app(scope, receive, _sanitising(send))
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await send_error(
                    send, 413, f"the request body is over {self.max_body_bytes} bytes; split it into smaller requests"
                )
                return
            if not message.get("more_body", False):
                break
        headers = dict(scope.get("headers") or [])
        try:
            check_request(
                bytes(body), headers.get(b"content-type", b"").decode("latin-1"), self.max_notes, self.max_chars
            )
        except RequestRejected as rejected:
            await send_error(send, rejected.status, rejected.message)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # the client's disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, _sanitising(send))


async def send_error(send: Send, status: int, message: str) -> None:
    start, body = _json_response(status, message)
    await send(start)
    await send(body)


def _sanitising(send: Send) -> Send:
    """A `send` that passes successful responses through and replaces the body of any error response."""
    status: int | None = None

    async def guarded(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            if status < 400:
                await send(message)
            return
        if message["type"] == "http.response.body" and status is not None and status >= 400:
            if not message.get("more_body", False):
                await send_error(send, status, _REPLACED_MESSAGES.get(status, _DEFAULT_REPLACED))
            return
        await send(message)

    return guarded
