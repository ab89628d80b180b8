"""Reading X12 interchanges through `x12sdk`, one transaction set at a time, with errors that say where.

`x12sdk` validates a whole transaction set (ST..SE) as one pydantic model, so its errors name a path
of loops and fields ("loop_2000.0.loop_2100.1.loop_2110.0.svc_segment.line_item_charge_amount"), and an
unknown segment stops the whole interchange. Here each transaction set is parsed alone, inside its own
ISA/GS envelope, so one bad set is one error (or, in skip mode, one skipped set with its reason and the
number of claims it held) and the others still read. Messages name the file, the transaction set, the
loop path, the segment and the field, never a value: a value may be a patient's name or account number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

OnError = Literal["raise", "skip"]


class X12InputError(ValueError):
    """A file that is not a readable X12 interchange of the expected kind, or a bad transaction set in one."""


@dataclass(frozen=True)
class Skipped:
    """A transaction set left out in skip mode: where, why, and how many claims (CLP or CLM segments) it held."""

    where: str
    reason: str
    claims: int


@dataclass
class ReadReport:
    """What reading a file gave: its separators, the parsed transaction models with each one's 1-based set
    number in the file, and the sets skipped (skip mode only)."""

    delimiters: Delimiters
    transactions: list[Any] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Delimiters:
    """The separators an interchange declares in its ISA segment (fixed width: 106 characters)."""

    element: str
    component: str
    segment: str


_SEPARATORS = re.compile(r"[*:~^\n]")  # the separators the writers here use (x12sdk's): never inside a value


def plain_element(value: str | None, where: str, name: str) -> str | None:
    """A value a writer puts into an element as is, so it must hold no separator (the message names the field
    only, never the value)."""
    if value is not None and _SEPARATORS.search(value):
        raise ValueError(f"{where}: {name} holds an X12 separator (* : ~ ^ or a newline)")
    return value


def delimiters(raw: str, source: str) -> Delimiters:
    """The ISA segment's element (ISA position 4), component (ISA16) and segment separators."""
    text = raw.lstrip()
    if not text.startswith("ISA") or len(text) < 106:
        raise X12InputError(f"{source}: not an X12 interchange (it must begin with a 106-character ISA segment)")
    return Delimiters(element=text[3], component=text[104], segment=text[105])


def _segments(raw: str, d: Delimiters) -> list[str]:
    return [s.strip() for s in raw.strip().split(d.segment) if s.strip()]


def transaction_sets(raw: str, source: str, d: Delimiters) -> Iterator[tuple[int, str, int, str]]:
    """(1-based number, the set wrapped in the interchange's own envelope, claims it holds, its ST01) per ST..SE."""
    segments = _segments(raw, d)
    ids = [s.split(d.element, 1)[0] for s in segments]
    head = [s for s, i in zip(segments, ids) if i in ("ISA", "GS")]
    if len(head) != 2 or ids[:2] != ["ISA", "GS"]:
        raise X12InputError(f"{source}: segment 2: expected a GS segment after ISA")
    starts = [k for k, i in enumerate(ids) if i == "ST"]
    if not starts:
        raise X12InputError(f"{source}: no transaction set (no ST segment)")
    for number, start in enumerate(starts, 1):
        end = next((k for k in range(start, len(ids)) if ids[k] == "SE"), None)
        if end is None:
            raise X12InputError(f"{source}: transaction set {number} (segment {start + 1}): no SE segment closes it")
        body = segments[start : end + 1]
        claims = sum(s.split(d.element, 1)[0] in ("CLP", "CLM") for s in body)
        control = head[1].split(d.element)
        envelope = [*head, *body, f"GE{d.element}1{d.element}{control[6] if len(control) > 6 else '1'}",
                    f"IEA{d.element}1{d.element}{head[0].split(d.element)[13]}"]  # fmt: skip
        kind = (body[0].split(d.element) + [""])[1]  # ST01: 835, 837
        yield number, d.segment.join(envelope) + d.segment, claims, kind


_LOOP = re.compile(r"^(loop_\w+|header|footer)$")


def _without_value(error: dict[str, Any]) -> str:
    """pydantic's message for one error, unless it may quote the input: x12sdk's own checks (type
    "value_error") write the value into the message ("Invalid date value 20051325" of a birth date, "Claim
    Amount 784.45 != Service Line Total 784.46"); those say only which check failed. Segment-count checks
    quote counts, not patient data, and stay."""
    message = str(error.get("msg", "invalid"))
    if error.get("type") != "value_error" or "segment count" in message:
        return message
    return "failed one of x12sdk's checks here (the value is not shown: it may be a patient's)"


def describe_validation_error(exc: Any) -> str:
    """A pydantic ValidationError of an x12sdk model as "loop 2100 #2 > loop 2110 #1 > SVC line_item_charge_amount:
    Input should be a valid decimal", without the input value."""
    parts = []
    for error in exc.errors()[:3]:
        loc, path, pending = [str(p) for p in error.get("loc", ())], [], None
        for piece in loc:
            if piece.isdigit() and pending:
                path.append(f"{pending} #{int(piece) + 1}")
                pending = None
                continue
            if pending:
                path.append(pending)
            pending = None
            if _LOOP.match(piece):
                pending = piece.replace("_", " ")
            elif piece.endswith("_segment"):
                path.append(piece[: -len("_segment")].upper())
            else:
                path.append(piece)
        if pending:
            path.append(pending)
        where = " > ".join(path) or "transaction set"
        parts.append(f"{where}: {_without_value(error)}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def read_interchange(path: str | Path, expected: str, on_error: OnError = "raise") -> ReadReport:
    """The transaction set models of `expected` kind ("835", "837") in an X12 file, parsed by x12sdk."""
    from pydantic import ValidationError
    from x12sdk.io import X12ModelReader

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    source = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise X12InputError(f"{source}: cannot be read as text ({type(exc).__name__})") from None
    report = ReadReport(delimiters(raw, source))
    for number, text, claims, kind in transaction_sets(raw, source, report.delimiters):
        where = f"{source}: transaction set {number}"
        reason = None
        if kind != expected:
            reason = f"is not an {expected} (ST01 is not {expected})"
        else:
            try:
                with _quiet_x12sdk(), X12ModelReader(text) as reader:
                    models = list(reader.models())
                report.transactions += models
                report.numbers += [number] * len(models)
            except ValidationError as exc:
                reason = describe_validation_error(exc)
            except KeyError as exc:  # x12sdk's lookup of a segment it has no model for
                reason = f"unsupported segment {exc.args[0]!r}"
        if reason is not None:
            if on_error == "raise":
                raise X12InputError(f"{where}: {reason}")
            report.skipped.append(Skipped(where, reason, claims))
    return report


class _quiet_x12sdk:
    """x12sdk logs a traceback before raising on an unknown segment; the error we raise says it in one line."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("x12sdk")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)
