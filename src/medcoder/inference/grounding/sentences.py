"""The note's sentences as grounding reads them: where a sentence starts and ends, which sentences
plainly assert something, which state a family or past history, and which labels those sentences
write out whatever the model scored (`written_out`).

A searched sentence is text the model did not point at, so the search stays conservative: a sentence
with any context trigger, a qualifying word, a section header or a coding instruction is not searched.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence

import numpy as np

from medcoder.codes.formats import ICD10CM
from medcoder.codes.values import is_value_code
from medcoder.data.labels import Label
from medcoder.data.schema import Span
from medcoder.data.spans import word_span
from medcoder.inference.grounding.context import (
    DATED_PAST,
    FAMILY,
    HISTORICAL,
    SPACED_DASH,
    UNCERTAIN,
    detect_context,
    has_trigger,
    qualifies,
    stated_status,
    states_status,
    without_pseudo_triggers,
)
from medcoder.inference.grounding.identification import is_identification_line
from medcoder.inference.grounding.instructions import is_coding_instruction
from medcoder.inference.grounding.verifier import SupportVerifier

# a full stop after a list number does not end a sentence: a digit that starts an item, at a line's start,
# after a bracket, or after a colon or another item's end ("Discharge diagnoses: 1. CHF. 2. HTN."). After a
# word it is a value that ends its sentence: "CKD stage 3. No chest pain" is two sentences
# a full stop after an initial ends nothing when a lower-case word follows ("E. coli", "H. pylori")
SENTENCE_END = re.compile(
    r"(?<!^\d)(?<!^\s\d)(?<![\n(]\d)(?<![:.;]\s\d)(?<!\s\s\d)(?:[!?;]|(?<!\b[A-Z])\.|\.(?!\s+[a-z]))(?=\s)|\n",
    re.MULTILINE,
)


def sentence_at(text: str, position: int) -> Span:
    """[start, end) of the sentence or line holding character `position` (end keeps its full stop)."""
    starts, ends, newline = _sentence_ends(text)
    # the ends of the text before `position`: a full stop right before it ends nothing there (what follows it
    # is not in that text), a line break does
    before = bisect.bisect_left(ends, position)
    if before < len(ends) and ends[before] == position and newline[before]:
        before += 1
    following = bisect.bisect_left(starts, position)
    return (ends[before - 1] if before else 0), (starts[following] + 1 if following < len(starts) else len(text))


@functools.lru_cache(maxsize=8)
def _sentence_ends(text: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]:
    """(starts, ends, is a line break) of the note's SENTENCE_END matches, found once per note: every span of a
    long note asks for its sentence, and scanning the note from its start each time was quadratic."""
    found = list(SENTENCE_END.finditer(text))
    return tuple(m.start() for m in found), tuple(m.end() for m in found), tuple(m.group() == "\n" for m in found)


# a sentence holding any of these words (or any context trigger, `context.qualifies`) may negate,
# defer, attribute or doubt what it says: it is not searched for support (the context check judges
# spans the model chose; this search stays conservative)
_QUALIFIED = re.compile(
    r"\b(?:no|not|non|never|none|denies|denied|without|negative|neg|ruled?|r/o|rule|history|hx|h/o|family|fhx|mother|"
    r"father|sister|brother|son|daughter|if|possible|possibly|probable|probably|likely|suspect\w*|concern\w*|versus|"
    r"vs|risk|screen\w*|prior|previous|old|resolved|past|former|nkda|nka|call|return|consider\w*|recent)\b",
    re.IGNORECASE,
)
# a section header alone on its line ("Drug Allergies:", "PAST MEDICAL HISTORY") names a topic, not a finding
_HEADER_LINE = re.compile(r"^\s*(?:[A-Za-z][A-Za-z /&()-]{0,40}:|[A-Z][A-Z/&()-]*(?: [A-Z/&()-]+){1,5}:?)\s*$")


def _is_header_line(text: str, start: int) -> bool:
    """Whether the line holding `start` is a section header alone on its line."""
    line_end = text.find("\n", start)
    return bool(_HEADER_LINE.match(text[text.rfind("\n", 0, start) + 1 : line_end if line_end >= 0 else len(text)]))


def sentences(text: str, min_words: int = 2) -> list[Span]:
    """Sentences (or lines) of the note of at least `min_words` words, identification lines left out."""
    return list(_sentences(text, min_words))


# A note's sentences and clauses are found once per note (`_sentences`, `_clauses`): grounding reads them for
# the verifier's prefetch, the searched sentences, the status sentences, the quoted clauses and the doubted
# diagnoses, nine times a note, and on a long note each reading cost as much as the network's forward.
@functools.lru_cache(maxsize=16)
def _sentences(text: str, min_words: int) -> tuple[Span, ...]:
    out, start = [], 0
    for m in list(SENTENCE_END.finditer(text)) + [None]:
        end = m.end() if m is not None else len(text)
        span = word_span(text, start, end) if text[start:end].strip() else None
        if (
            span is not None
            and len(text[span[0] : span[1]].split()) >= min_words
            and not is_identification_line(text, span[0])
        ):
            out.append(span)
        start = end
    return tuple(out)


# where a clause ends inside a sentence: a comma, a colon, brackets, a spaced dash, or "and"/"but" before
# a second verb of the same subject ("He had a heart attack in 2015 | and has type 2 diabetes": the past
# is the first clause's, not the second's)
_NEXT_PREDICATE = r"\s(?i:and|but)\s(?=(?i:(?:he|she|they|pt|patient)\s+)?(?i:has|have|had|is|was|are|were)\b)"
CLAUSE_END = re.compile(r"[,:()\[\]]|" + SPACED_DASH + "|" + _NEXT_PREDICATE)
# a list bullet before a clause ("- Hyperlipidemia, continue statin") is layout, not the quote
_BULLET = re.compile(r"\s*[-*\u2022]\s+")


def clauses(text: str) -> list[Span]:
    """The clauses of the note's documentation sentences (no header line, no coding instruction), whole
    words: "Chest pain" and "possibly due to GERD" of "Impression: Chest pain, possibly due to GERD".
    Where the note states a code it already grounds, a coder wants every such place quoted."""
    return list(_clauses(text))


@functools.lru_cache(maxsize=8)
def _clauses(text: str) -> tuple[Span, ...]:
    out = []
    for a, b in sentences(text, min_words=1):  # "Diagnoses: pneumonia; COPD." lists one-word items
        if _is_header_line(text, a) or is_coding_instruction(text[a:b]):
            continue
        cuts = [a, *(pos for m in CLAUSE_END.finditer(text, a, b) for pos in (m.start(), m.end())), b]
        for lo, hi in zip(cuts[::2], cuts[1::2]):
            if text.startswith(":", hi):  # a field's label ("Drug Allergies: codeine") names no finding
                continue
            bullet = _BULLET.match(text, lo, hi)
            if (span := word_span(text, bullet.end() if bullet else lo, hi)) is not None:
                out.append(span)
    return tuple(dict.fromkeys(out))


def note_sentences(text: str) -> list[str]:
    """The texts grounding reads in a note (its `sentences` and `diagnostic_clauses`): for the verifier's prefetch."""
    return list(dict.fromkeys(text[a:b] for a, b in [*sentences(text), *diagnostic_clauses(text)]))


# a clause of only these words names nothing a code could rest on ("unspecified" of "Dx: chest pain, unspecified")
_NAMES_SOMETHING = re.compile(
    r"\b(?!(?:unspecified|other|specified|not|elsewhere|classified|type|site|stable|controlled|uncontrolled|"
    r"improved|improving|resolved|acute|chronic|mild|moderate|severe|left|right|bilateral|continue|new)\b)[a-z]{2,}",
    re.IGNORECASE,
)


def _plain(text: str) -> bool:
    """No qualifying word (`_QUALIFIED`) and no context trigger (`context.qualifies`) in `text`, outside
    its pseudo-triggers ("pneumonia, organism not identified" is plain)."""
    text = without_pseudo_triggers(text)
    return not _QUALIFIED.search(text) and not qualifies(text)


# the headers of a note's final diagnostic statements, which a coder codes from
_DIAGNOSTIC_HEADER = re.compile(
    r"^(?:(?:discharge|final|principal|primary|secondary|working)\s+)?(?:diagnos[ie]s|dx)|impression|"
    r"assessment(?:\s*(?:/|and|&)\s*plan)?|a\s*/\s*p|a\s*&\s*p|a$|problem\s+list|problems$",
    re.IGNORECASE,
)
_LABELLED_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z /&()-]{0,40}):")


def in_diagnostic_statement(text: str, start: int) -> bool:
    """Whether the line holding `start` is a final diagnostic statement: a line labelled "Impression:",
    "A/P:", "Discharge diagnoses:" and the like, or a line under such a header alone on its line, up to
    a blank line or another labelled line; or, inside a line, from a sentence such a label opens to the
    next sentence another label opens, as a note written in one paragraph puts it ("... Monofilament
    intact. A/P: COPD, stable. Chronic atrial fibrillation, rate controlled. Plan: refills.")."""
    if _inline_label_is_diagnostic(text, start):
        return True
    pos = text.rfind("\n", 0, start) + 1
    while True:
        line_end = text.find("\n", pos)
        line = text[pos : line_end if line_end >= 0 else len(text)]
        label = _LABELLED_LINE.match(line)
        if label:
            return bool(_DIAGNOSTIC_HEADER.match(label.group(1).strip()))
        if pos == 0 or not line.strip():
            return False
        pos = text.rfind("\n", 0, pos - 1) + 1  # the line above


def _inline_label_is_diagnostic(text: str, start: int) -> bool:
    """Whether the nearest sentence at or before `start` in its line that opens with a label ("Plan:",
    "Assessment:") opens with a diagnostic one."""
    starts, diagnostic = _labelled_sentences(text)
    k = bisect.bisect_right(starts, start) - 1
    return k >= 0 and starts[k] >= text.rfind("\n", 0, start) + 1 and diagnostic[k]


@functools.lru_cache(maxsize=8)
def _labelled_sentences(text: str) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """(starts, opens with a diagnostic label) of the note's sentences that open with a label, found once per
    note: every clause asks, and a one-line transcription has hundreds of sentences."""
    starts, diagnostic = [], []
    for a, _ in sentences(text, min_words=1):
        label = _LABELLED_LINE.match(text[a : a + 60])  # its "^" is the slice's start
        if label:
            starts.append(a)
            diagnostic.append(bool(_DIAGNOSTIC_HEADER.match(label.group(1).strip())))
    return tuple(starts), tuple(diagnostic)


def diagnostic_clauses(text: str) -> list[Span]:
    """The clauses of the note's final diagnostic statements (`in_diagnostic_statement`), where a coder
    reads the diagnoses: searched for codes, and quoted beside a grounded code's own evidence."""
    return list(_diagnostic_clauses(text))


@functools.lru_cache(maxsize=8)
def _diagnostic_clauses(text: str) -> tuple[Span, ...]:
    return tuple(c for c in _clauses(text) if in_diagnostic_statement(text, c[0]))


def plain_sentences(text: str) -> list[Span]:
    """Sentences that plainly assert something (`_plain`), and in the note's final diagnostic
    statements (`in_diagnostic_statement`) the clauses of plain sentences, which say a code in fewer
    other words: "Cough" of "Impression: Cough", "Community-acquired pneumonia" of
    "Discharge diagnosis: Community-acquired pneumonia, right lower lobe, organism not identified".
    Clauses elsewhere are not searched: a short clause of the history ("painful right leg", "cough and
    sore throat") sounds like a diagnosis it is not. Where the model's own spans do not support a code
    it scored above the threshold, these are searched for words that do ("Impression: uncomplicated
    urinary tract infection" for N39.0 whose attention sat on "going to the bathroom a lot")."""
    whole = [
        (a, b)
        for a, b in sentences(text)
        if _plain(text[a:b]) and not _is_header_line(text, a) and not is_coding_instruction(text[a:b])
    ]
    diagnostic = diagnostic_clauses(text)
    plain_sentence = {span: _plain(text[span[0] : span[1]]) for span in {sentence_at(text, a) for a, _ in diagnostic}}
    # a plain clause of a sentence that negates or doubts something else counts where no trigger of the
    # sentence reaches it: "chest pain" of "Dx: chest pain, ACS excluded". Not in a sentence that tells
    # a past or a relative's story, which is about all its clauses: "Had CAP in September, now resolved"
    told = {span: has_trigger(text[span[0] : span[1]], (FAMILY, HISTORICAL)) for span in plain_sentence}
    parts = [
        (a, b)
        for a, b in diagnostic
        if _NAMES_SOMETHING.search(text[a:b])
        and (
            plain_sentence[sentence_at(text, a)]
            or (not told[sentence_at(text, a)] and _plain(text[a:b]) and detect_context(text, a, b) is None)
        )
    ]
    return list(dict.fromkeys(whole + parts))


def is_doubted(text: str, clause: Span) -> bool:
    """Whether the context check reads the clause as doubted ("r/o UTI", "pneumonia, likely")."""
    match = detect_context(text, *clause)
    return match is not None and match.status == UNCERTAIN


def doubted_diagnosis_clauses(text: str) -> list[Span]:
    """Clauses of the final diagnostic statements that a doubt alone qualifies: "community-acquired
    pneumonia" of "Discharge diagnosis: community-acquired pneumonia, likely, right lower lobe". At
    inpatient discharge an uncertain diagnosis is coded as if established (Section II.H), so grounding
    searches these there as it searches plain sentences (not for codes of confirmed cases only)."""
    return [c for c in diagnostic_clauses(text) if _NAMES_SOMETHING.search(text[c[0] : c[1]]) and is_doubted(text, c)]


# a clause that opens with a doubt word qualifies the diagnosis before it: "pneumonia, likely aspiration"
_OPENS_WITH_DOUBT = re.compile(
    r"\s*(?:probable|probably|possible|possibly|suspected|suspect|presumed|presumptive|questionable|likely|maybe)\b",
    re.IGNORECASE,
)


def doubt_qualified_diagnoses(text: str) -> list[Span]:
    """A clause of the final diagnostic statements joined to the doubt that follows it after a comma: "right
    lower lobe pneumonia, likely aspiration" states probable aspiration pneumonia, which neither clause says
    alone ("likely aspiration" names no disease, "right lower lobe pneumonia" not its kind). Searched at
    inpatient discharge with the doubted clauses (Section II.H); not taken for a doubted clause itself, so a
    confirmed-only code quoted in the first clause ("COVID-19 pneumonia, likely bacterial") stays coded."""
    clauses = diagnostic_clauses(text)
    return [
        (before[0], after[1])
        for before, after in zip(clauses, clauses[1:])
        if text[before[1] : after[0]].strip() == ","
        and sentence_at(text, before[0]) == sentence_at(text, after[0])
        and (doubt := _OPENS_WITH_DOUBT.match(text[after[0] : after[1]]))
        and _NAMES_SOMETHING.search(text[after[0] + doubt.end() : after[1]])  # "likely" alone qualifies nothing new
    ]


def written_out(
    text: str,
    labels: Sequence[Label],
    verifier: SupportVerifier,
    plain: Sequence[Span],
    by_status: dict[str, list[Span]],
) -> np.ndarray:
    """(L,) bool: ICD-10-CM labels that a sentence searched for them (grounding's plain and status
    sentences) supports at the verifier's `rescue_support`, whatever the model scored. A model that
    learnt a generator's phrasings scores "Father with colon cancer" near 0 for Z80.0; the frozen
    verifier reads the words. One encoder call: each sentence is embedded once against every label's
    texts. Not searched for: procedure and service codes (a named test is not a performed one) and
    value codes (an A1c of 5.9% is coded as prediabetes only where the provider says so)."""
    searched = list(dict.fromkeys([*plain, *by_status.get(FAMILY, ()), *by_status.get(HISTORICAL, ())]))
    if not searched:
        return np.zeros(len(labels), dtype=bool)
    support = verifier.support_matrix([text[a:b] for a, b in searched])  # (sentences, verifier labels)
    plain_set, status_sets = set(plain), {status: set(spans) for status, spans in by_status.items()}
    label_status, searchable = _search_targets(verifier.labels)
    # a plain sentence is searched for every searchable label, a status sentence only for its status codes
    in_reach = np.array([[sentence in plain_set or sentence in status_sets.get(status, ()) for status in label_status]
                         for sentence in searched])  # fmt: skip
    found = ((support >= verifier.rescue_support) & in_reach & searchable).any(axis=0)
    index = verifier.label_index
    return np.array([label in index and bool(found[index[label]]) for label in labels])


@functools.lru_cache(maxsize=8)
def _search_targets(labels: tuple[Label, ...]) -> tuple[tuple[str | None, ...], np.ndarray]:
    """Per label of a verifier: the status whose sentences state it (`context.stated_status`), and
    whether it is searched at all (ICD-10-CM, not value-decided); the same for every note."""
    statuses = tuple(stated_status(*label) for label in labels)
    return statuses, np.array([system == ICD10CM and not is_value_code(code) for system, code in labels])


def _inside_last(spans: Sequence[Span], starts: Sequence[int], span: Span) -> bool:
    """Whether `span` lies inside one of the ordered, disjoint `spans` (whose `starts` are given)."""
    i = bisect.bisect_right(starts, span[0]) - 1
    return i >= 0 and span[1] <= spans[i][1]


def status_sentences(text: str) -> dict[str, list[Span]]:
    """status -> the sentences that state it plainly (`context.states_status`), for the codes whose
    meaning that status is (family history Z80-Z84, personal history Z85-Z87): "Father with colon
    cancer" is no plain sentence, yet it is where Z80.0 is written."""
    searched = [s for s in sentences(text) if not is_coding_instruction(text[s[0] : s[1]])]
    starts = [a for a, _ in searched]  # in order and disjoint: only the last one starting at or before can hold it
    note_clauses = [c for c in clauses(text) if _inside_last(searched, starts, c)]
    out = {}
    for status in (FAMILY, HISTORICAL):
        stating = [s for s in searched if states_status(text[s[0] : s[1]], status)]
        # and clauses that state it, in fewer other words: "History of breast cancer" of "A/P: 1) History
        # of breast cancer, NED, continue annual surveillance", and "hx of breast cancer s/p lumpectomy
        # 2010" of a sentence that goes on "no tx since" (a negation there says the disease is over;
        # one whose scope reaches the clause, as in "Denies: history of MI", keeps it out)
        parts = [
            c for c in note_clauses if states_status(text[c[0] : c[1]], status) and not _deferred_or_denied(text, c)
        ]
        out[status] = list(dict.fromkeys(stating + parts))
    return out


def _deferred_or_denied(text: str, clause: Span) -> bool:
    """Whether the clause's sentence negates, doubts or defers the clause (ConText scope)."""
    match = detect_context(text, *clause, ignore=(FAMILY, HISTORICAL))
    return match is not None


# what a sentence stating a past condition says around the condition's name: its subject and verb, the
# history trigger, an article ("He had a | heart attack | in 2015", "Hx | MI | 2015", "s/p | stroke")
_PAST_LEAD = re.compile(
    r"(?:(?:he|she|they|patient|pt|the|has|have|had|was|were|been|diagnosed|with|a|an|his|her|their|known|"
    r"remote|old|prior|previous|former|past|history|of|hx|h/o|s/p|status|post)\b[\s:]*)+",
    re.IGNORECASE,
)
# and after it, from when it happened or how it ended ("stroke | in 2019 with full recovery")
_PAST_TAIL = re.compile(
    rf"\s+(?:{DATED_PAST}|with\s+(?:full|complete)\s+recovery|fully\s+recovered|(?:now\s+)?resolved|"
    r"without\s+(?:any\s+)?residual)\b|(?:\s+(?:in|on|at|of))+\W*$",
    re.IGNORECASE,
)


# a past procedure or test is no past condition: "He had a colonoscopy in 2015" says nothing of colon cancer
_PROCEDURE = re.compile(
    r"\w+(?:scopy|ectomy|otomy|ostomy|plasty|graphy|gram|pexy)\b|\b(?:cath(?:eterization)?|stent\w*|surgery|"
    r"biopsy|screening|test(?:ing)?|scan|x-?ray|ct|mri|ultrasound|echo\w*|ekg|ecg|vaccin\w*|shot|injection)\b",
    re.IGNORECASE,
)


def past_condition_words(text: str, clause: Span) -> Span | None:
    """The words that name the condition in a clause stating a past one: "heart attack" of "He had a heart
    attack in 2015". The verifier reads a condition's name, not the story around it (it supports I21.4 at
    0.95 on "heart attack", at 0.84 on the whole clause); the clause's status says the condition is past.
    None when the words name a procedure or test ("a colonoscopy"): a past procedure is no past condition."""
    start, end = clause
    lead = _PAST_LEAD.match(text, start, end)
    start = lead.end() if lead else start
    tail = _PAST_TAIL.search(text, start, end)
    end = tail.start() if tail else end
    if start >= end or _PROCEDURE.search(text, start, end):
        return None
    return word_span(text, start, end)
