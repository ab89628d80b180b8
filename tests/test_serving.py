"""Serving never echoes a request body or a trace, and bounds the work per request: the app
`medcoder serve` runs (MLflow's scoring server for the tiny model, behind the guard) is called
in-process over ASGI with the requests that used to leak; a canary in every body must never come back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from export_support import TinyCoder
from mlflow.exceptions import MlflowException

from medcoder.export.mlflow_model import save_packaged_model
from medcoder.serving.app import build_app
from medcoder.serving.guard import RequestGuard

CANARY = "CANARY-Zyxwv-Quortlebaum-987-65-4329"


def call(app, body: bytes, path: str = "/invocations", content_type: str = "application/json") -> tuple[int, bytes]:
    """One HTTP request through an ASGI app, in-process; returns (status, body)."""
    sent: list[dict] = []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> dict:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=300))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture(scope="module")
def folder(tiny: TinyCoder, tmp_path_factory) -> Path:
    return save_packaged_model(tiny.export_dir, tmp_path_factory.mktemp("serving") / "pyfunc")


@pytest.fixture(scope="module")
def app(folder: Path) -> RequestGuard:
    return build_app(folder, {"model_name": "medcoder-test", "model_version": "7"}, max_notes=4, max_chars=8000)


def assert_clean(status: int, body: bytes, expected_status: int) -> dict:
    assert status == expected_status, body[:300]
    assert CANARY.encode() not in body and b"Traceback" not in body and b"stack_trace" not in body
    answer = json.loads(body)
    assert set(answer) == {"error_code", "message"} and "\n" not in answer["message"]
    return answer


def test_a_good_request_gets_contract_lines(app, tiny: TinyCoder) -> None:
    note = tiny.records[0]
    status, body = call(
        app, json.dumps({"inputs": [{"id": note.id, "text": note.text}, {"id": "e", "text": ""}]}).encode()
    )
    assert status == 200
    lines = json.loads(body)["predictions"]
    assert [line["id"] for line in lines] == [note.id, "e"] and lines[0]["model"]["version"] == "7"
    assert lines[1]["error"]["kind"] == "empty_text"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (
            b'{"inputs": [{"id": "a", "text": "' + CANARY.encode() + b'"',
            400,
            "not valid JSON",
        ),  # malformed: used to be quoted back
        (b'{"inputs": [{"id": "a", "text": "' + CANARY.encode() + b'\xff"}]}', 400, "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),  # used to be a 500
        (
            json.dumps({"inputs": CANARY}).encode(),
            422,
            '"inputs" must be a list of records',
        ),  # used to be a stack trace
        (json.dumps({"inputs": None}).encode(), 422, "got null"),
        (
            json.dumps({"dataframe_records": [{"id": "a", "text": CANARY}]}).encode(),
            422,
            'must be a JSON object {"inputs"',
        ),
        (json.dumps({"inputs": [{"id": str(i), "text": CANARY} for i in range(5)]}).encode(), 413, "holds 5 notes"),
        (
            json.dumps({"inputs": [{"id": "a", "text": CANARY + " chest pain" * 900}]}).encode(),
            413,
            "one request may hold at most 4 notes and 8000 characters",
        ),
    ],
)
def test_bad_requests_get_a_clean_error_without_the_body(app, body: bytes, status: int, message: str) -> None:
    answer = assert_clean(*call(app, body), status)
    assert message in answer["message"]


def test_an_over_sized_body_and_non_json_content_are_refused_unread(app) -> None:
    answer = assert_clean(*call(app, b'{"inputs": ["' + CANARY.encode() * 400_000 + b'"]}'), 413)
    assert "request body is over" in answer["message"]
    assert_clean(*call(app, f"id,text\na,{CANARY}\n".encode(), content_type="text/csv"), 415)


def test_error_responses_from_the_server_itself_are_replaced() -> None:
    """What MLflow's scoring server answers on failures (request data in the message, a trace) never passes."""

    async def leaky(scope, receive, send) -> None:
        await receive()
        body = json.dumps(
            {
                "error_code": "BAD_REQUEST",
                "message": f"Failed to predict data '{CANARY}'",
                "stack_trace": "Traceback (most recent call last): ...",
            }
        ).encode()
        await send(
            {"type": "http.response.start", "status": 400, "headers": [(b"content-length", str(len(body)).encode())]}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    answer = assert_clean(
        *call(RequestGuard(leaky), json.dumps({"inputs": [{"id": "a", "text": "Cough."}]}).encode()), 400
    )
    assert "server log" in answer["message"]


def test_the_pyfunc_itself_refuses_bad_requests_without_quoting_them(tiny: TinyCoder) -> None:
    import mlflow

    from medcoder.export.mlflow_model import MedcoderPyfunc

    model = MedcoderPyfunc()
    model.load_context(
        mlflow.pyfunc.PythonModelContext(
            artifacts={"coder": str(tiny.export_dir)}, model_config={"max_request_notes": 2}
        )
    )
    for bad, expected in (
        (CANARY, "must be a list of records"),
        (None, "got NoneType"),
        ([{"id": str(i), "text": CANARY} for i in range(3)], "holds 3 notes"),
    ):
        with pytest.raises(MlflowException, match=expected) as err:
            model.predict(None, bad)
        assert CANARY not in err.value.message and err.value.get_http_status_code() == 400


def test_serve_refuses_what_it_cannot_check(tmp_path: Path) -> None:
    from medcoder.serving.command import prepare

    with pytest.raises(ValueError, match="serves registered versions only"):
        prepare(str(tmp_path), tmp_path)


def test_request_limits_set_at_load_reach_the_model(folder: Path) -> None:
    """MLflow drops load-time model_config keys the model was not logged with: the limits are logged."""
    import mlflow

    pyfunc = mlflow.pyfunc.load_model(str(folder), model_config={"max_request_notes": 3}).unwrap_python_model()
    assert (pyfunc.max_request_notes, pyfunc.max_request_chars) == (3, 200_000)
