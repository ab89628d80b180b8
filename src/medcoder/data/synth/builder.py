"""Assemble note text and its annotations in one pass, so every offset is exact by construction.

Evidence and mention offsets are recorded at the moment a phrase is appended, never by searching
the finished text (a search would pick the wrong copy of "HTN" when it appears twice). A note is
written as a sequence of *pieces*: plain strings, or `Ann`otated pieces that mark their text as
evidence for some codes and/or as a non-coded mention. Pieces nest, so "history of colon cancer"
can be evidence for Z85.038 while its inner "colon cancer" is a historical C18.9 mention.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from medcoder.data.schema import CodeAssignment, Mention

Code = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class Ann:
    """An annotated piece: `body` is evidence for `codes` and/or a mention (code, status)."""

    body: Piece
    codes: tuple[Code, ...] = ()
    mention: tuple[str, str] | None = None  # (code, status)


Piece = str | Ann | list  # a list is a sequence of pieces


def ev(body: Piece, *codes: Code) -> Ann:
    """Mark `body` as evidence for each of `codes`."""
    return Ann(body, codes=tuple(codes))


def men(body: Piece, code: str, status: str) -> Ann:
    """Mark `body` as a non-coded mention of `code` with `status` (negated, family, ...)."""
    return Ann(body, mention=(code, status))


_FORMATTER = string.Formatter()


def fill(template: str, **slots: Piece) -> list:
    """Split `template` ("Hx of {dx}.") into pieces, putting each slot's piece in its place.

    Unlike str.format, slot values keep their annotations, which is what lets templates vary
    freely while offsets stay exact.
    """
    pieces: list = []
    for literal, name, spec, conv in _FORMATTER.parse(template):
        if literal:
            pieces.append(literal)
        if name is not None:
            if spec or conv:
                raise ValueError(f"template slot {{{name}}} must not use a format spec or conversion")
            if name not in slots:
                raise KeyError(f"template slot {{{name}}} has no value")
            pieces.append(slots[name])
    return pieces


def join(items: list[Piece], sep: str = ", ", last: str | None = None) -> list:
    """Join pieces with `sep` (and `last` before the final one: "a, b and c")."""
    out: list = []
    for i, item in enumerate(items):
        if i:
            out.append(last if (last is not None and i == len(items) - 1) else sep)
        out.append(item)
    return out


@dataclass
class NoteBuilder:
    """Accumulates text; `add` appends pieces and records spans at their true offsets."""

    parts: list[str] = field(default_factory=list)
    pos: int = 0
    evidence: dict[Code, list[tuple[int, int]]] = field(default_factory=dict)
    mentions: list[Mention] = field(default_factory=list)

    def add(self, *pieces: Piece) -> tuple[int, int]:
        """Append pieces; returns the span they cover."""
        start = self.pos
        for piece in pieces:
            self._write(piece)
        return (start, self.pos)

    def line(self, *pieces: Piece) -> None:
        self.add(*pieces)
        self.add("\n")

    def _write(self, piece: Piece) -> None:
        if isinstance(piece, str):
            self.parts.append(piece)
            self.pos += len(piece)
        elif isinstance(piece, list):
            for p in piece:
                self._write(p)
        elif isinstance(piece, Ann):
            start = self.pos
            self._write(piece.body)
            end = self.pos
            if end <= start:
                raise ValueError("an annotated piece must not be empty")
            for code in piece.codes:
                spans = self.evidence.setdefault(code, [])
                if (start, end) not in spans:
                    spans.append((start, end))
            if piece.mention is not None:
                self.mentions.append(Mention(start=start, end=end, code=piece.mention[0], status=piece.mention[1]))
        else:
            raise TypeError(f"cannot write a {type(piece).__name__} into a note")

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def code_assignments(self) -> tuple[CodeAssignment, ...]:
        """Codes with their evidence, ICD-10-CM first, then CPT, then HCPCS; codes sorted within."""
        order = {"ICD-10-CM": 0, "CPT": 1, "HCPCS": 2}
        keys = sorted(self.evidence, key=lambda k: (order.get(k[0], 9), k[0], k[1]))
        return tuple(CodeAssignment(system=s, code=c, evidence=tuple(self.evidence[(s, c)])) for s, c in keys)
