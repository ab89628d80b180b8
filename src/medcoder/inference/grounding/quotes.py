"""What a code's evidence quotes: the words that say the code, not the whole line they sit in.

Why: grounding judges a code on readings of its evidence (the tagged fragment, its clause, its
sentence, sentences found by searching the note), and the reading the verifier accepts is often a
whole line: "Past Medical History: HTN, HLD, chronic heart failure with reduced ejection fraction,
asthma" for I50.22, or "5. Obstructive sleep apnea: using CPAP nightly, good adherence" for G47.33.
A coder quotes the mention, and so do evidence annotations (MDACE, the embedded corpus): on the
embedded test split the quoted lines made most predicted evidence words ones no annotator marked
(position-independent token precision 0.59 at recall 0.83).

So, once every decision is made, each quoted span is cut into its pieces (at commas, colons,
semicolons, brackets, spaced dashes and list conjunctions, without list bullets or numbers) and the
piece that supports the code best replaces the span when it clears the same bar the code cleared:
the grounding bar for a grounded code, the verifier's threshold for one routed to review. A
combination code (I11.0, E11.22, ...) quotes the best piece for each condition it combines when no
single piece says it; a value code (BMI, CKD stage) the piece that documents its value ("BMI 45.3"
of the vitals line). Nothing but the quote changes: codes, scores and `grounded` stay as decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from medcoder.codes.formats import ICD10CM
from medcoder.codes.values import is_value_code, value_supports
from medcoder.data.predictions import PredictedCode
from medcoder.data.schema import Span
from medcoder.data.spans import word_span
from medcoder.inference.grounding.sentences import CLAUSE_END
from medcoder.inference.grounding.verifier import SupportVerifier

# where a span's pieces end: clause ends, semicolons, and the conjunctions of a list ("HTN and HLD")
_PIECE_END = re.compile(CLAUSE_END.pattern + r"|;|\s+(?:and|&|\+)\s+", re.IGNORECASE)
# a list bullet or number before a piece ("5. Obstructive sleep apnea", "- CHF") is layout
_LIST_MARK = re.compile(r"\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
# a field label that names a site, not a finding: a side ("Right knee", "L ear", "bilateral feet") or an
# exam section ("Lungs", "Ext"); what follows its colon is the finding, and the quote keeps the site with it
_SITE_LABEL = re.compile(
    r"(?:right|left|bilateral|r|l|rt|lt)\b[\w /-]{0,30}|(?:lungs?|heart|cardiac|abdomen|abd|skin|ext|extremities"
    r"|heent|neck|back|spine|ears?|eyes?|throat|chest|neuro|psych|msk|gu|gi|resp|cv)",
    re.IGNORECASE,
)


def pieces(text: str, span: Span) -> list[Span]:
    """The pieces of `text[span]`, whole words, without list marks; [span] when it has one piece."""
    start, end = span
    cuts = [start, *(pos for m in _PIECE_END.finditer(text, start, end) for pos in (m.start(), m.end())), end]
    out: list[Span] = []
    qualifier: int | None = None  # start of a site label ("Right knee:") waiting for the finding it qualifies
    for lo, hi in zip(cuts[::2], cuts[1::2]):
        mark = _LIST_MARK.match(text, lo, hi)
        piece = word_span(text, mark.end() if mark else lo, hi)
        if piece is None:
            continue
        if out and not any(ch.isalpha() for ch in text[piece[0] : piece[1]]):
            out[-1] = (out[-1][0], piece[1])  # a value belongs to the words before it ("BMI: 45.8")
        elif any(ch.isalpha() for ch in text[piece[0] : piece[1]]):
            if qualifier is not None:
                piece, qualifier = (qualifier, piece[1]), None
            if text.startswith(":", hi) and _SITE_LABEL.fullmatch(text, piece[0], piece[1]):
                qualifier = piece[0]  # "Right knee: primary osteoarthritis" is one finding, the site its part
                continue
            out.append(piece)
    if qualifier is not None:  # a site label with nothing after it in the span
        out.append(word_span(text, qualifier, end) or (qualifier, end))
    return out if len(out) > 1 else [span]


def narrowed_quotes(
    codes: Sequence[PredictedCode],
    text: str,
    verifier: SupportVerifier,
    combination_parts: Mapping[str, tuple[str, ...]],
) -> list[PredictedCode]:
    """`codes` with each evidence span narrowed to the piece(s) that say the code (module docstring)."""
    spans = list(dict.fromkeys(s for c in codes for s in c.evidence))
    split = {s: pieces(text, s) for s in spans}
    candidates = list(dict.fromkeys(p for s in spans if len(split[s]) > 1 for p in split[s]))
    if not candidates:
        return list(codes)
    row = {p: i for i, p in enumerate(candidates)}
    support = verifier.support_matrix([text[a:b] for a, b in candidates])  # (pieces, verifier labels)
    out = []
    for c in codes:
        if not c.evidence:
            out.append(c)
            continue
        passes = verifier.grounds if c.grounded else verifier.accepts
        column = verifier.label_index[(c.system, c.code)]
        code_support = support
        if c.system == ICD10CM and is_value_code(c.code):  # only a piece that documents the value quotes it
            documents = np.array([value_supports(c.code, text[a:b]) is True for a, b in candidates])
            code_support = support.copy()
            code_support[:, column] = np.where(documents, support[:, column], 0.0)
        parts = [part_columns(verifier, prefix, combination_parts) for prefix in combination_parts.get(c.code, ())]
        quoted: list[Span] = []
        for span in c.evidence:
            quoted += _narrowed(split[span], span, [row[p] for p in split[span]] if len(split[span]) > 1 else [],
                                code_support, column, parts, passes)  # fmt: skip
        evidence = _outermost(quoted)
        out.append(replace(c, evidence=evidence) if evidence != c.evidence else c)
    return out


def _outermost(spans: Sequence[Span]) -> tuple[Span, ...]:
    """`spans` in text order without those inside another ("CKD" beside "CKD stage 3")."""
    unique = sorted(set(spans))
    return tuple(s for s in unique if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in unique))


def _narrowed(
    span_pieces: list[Span],
    span: Span,
    rows: list[int],
    support: np.ndarray,
    column: int,
    parts: list[list[int]],
    passes: Callable[[float], bool],
) -> list[Span]:
    """The piece of `span` that says the code, or for a combination code one per part; [span] when none passes."""
    if not rows:
        return [span]
    if parts and all(columns for columns in parts):  # a combination code: each condition it combines, if all are there
        per_part = [support[np.ix_(rows, columns)].max(axis=1) for columns in parts]
        chosen = [int(np.argmax(p)) for p in per_part]
        if all(passes(float(p[i])) for p, i in zip(per_part, chosen)):
            return [span_pieces[i] for i in dict.fromkeys(chosen)]
    own = support[rows, column]
    best = int(np.argmax(own))
    return [span_pieces[best]] if passes(float(own[best])) else [span]


def part_columns(verifier: SupportVerifier, prefix: str, combinations: Mapping[str, tuple[str, ...]]) -> list[int]:
    """The verifier's label columns of one condition a combination code combines (its code prefix), the
    combination codes themselves left out."""
    return [
        j
        for j, (system, code) in enumerate(verifier.labels)
        if system == ICD10CM and code.startswith(prefix) and code not in combinations
    ]
