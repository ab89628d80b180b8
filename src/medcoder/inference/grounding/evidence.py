"""From one note's model outputs to a NotePrediction: which codes, on which evidence, grounded or not.

For each code scored above the threshold:
1. the evidence tagger's spans (code-agnostic) are ranked by how much of THIS code's label attention
   falls on their tokens; spans carrying at least `min_span_mass` are the code's candidates. The
   tagger says "this is evidence of something", the attention says "of this code";
2. every candidate goes through the ConText-style check (`context.py`): a span that is negated,
   family, historical, hypothetical (or uncertain in a non-inpatient note) is not support. The best
   clean candidate, and any other carrying at least half its mass (up to `max_spans`), become the
   evidence and the code is grounded;
3. when no tagged span carries `min_span_mass` of the code's attention, the evidence falls back to
   the words around the attention peak (`window_tokens` tokens widened to whole words, within one
   sentence or line), which grounds the code only if a tagged span overlaps it: attention alone shows where the
   model looked, not that the text supports the code;
3b. with a `verifier` (medcoder.inference.grounding.verifier), a code is grounded only when the verifier
   accepts that its quoted text supports it: each clean candidate span is read alone, in its
   sentence and (for combination codes) joined with the other candidates; accepted spans become the
   evidence, best supported first. A code no text supports keeps its best candidate as evidence but
   is not grounded, so routing sends it to review or drops it. "Grounded" then means "the quoted
   words say this code", not "the model looked here";
4. a code whose evidence is ALL on such mentions is not coded at all (ICD-10-CM Official Guidelines:
   "denies chest pain" or "mother with breast cancer" never justify the code). It is left out of the
   prediction and counted in `NotePrediction.context_blocked`; the score stays what the model said.
   A code with no evidence at all is kept with `grounded=False` for the routing policy (review or drop).

The E/M code (one of EM_CLASSES) takes its level from the E/M head and its new/established family
from the note's words where it states one (visit_level.py). It has no tagged spans: its evidence is
the words that state the patient's status and the words around the peaks of the E/M pool's
attention, up to `max_spans` sentences ("show your work" for the visit level). No ConText check: a
visit level is not a condition that can be negated.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from medcoder.codes.formats import ICD10CM
from medcoder.codes.history import history_code
from medcoder.codes.icd10cm import is_sign_or_symptom
from medcoder.codes.terms import abbreviations, code_texts
from medcoder.codes.values import value_supports
from medcoder.data.labels import Label
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import Span
from medcoder.data.spans import spans_from_bio, word_span
from medcoder.inference.grounding.context import (
    FAMILY,
    HISTORICAL,
    HYPOTHETICAL,
    PRIORITY,
    UNCERTAIN,
    blocks_grounding,
    detect_context,
    exempt_statuses,
    has_trigger,
    is_confirmed_only,
    is_dated_acute_event,
    is_eradicated_malignancy,
    is_malignancy_on_treatment,
    ongoing_condition,
    stated_status,
    states_a_doubted_diagnosis,
    subject_of,
)
from medcoder.inference.grounding.identification import is_identification_line
from medcoder.inference.grounding.instructions import is_coding_instruction
from medcoder.inference.grounding.quotes import narrowed_quotes, part_columns
from medcoder.inference.grounding.sentences import (
    CLAUSE_END,
    clauses,
    diagnostic_clauses,
    doubt_qualified_diagnoses,
    doubted_diagnosis_clauses,
    in_diagnostic_statement,
    is_doubted,
    past_condition_words,
    plain_sentences,
    sentence_at,
    sentences,
    status_sentences,
    written_out,
)
from medcoder.inference.grounding.specificity import Unmet, check_documentation, fallback_for, specific_siblings
from medcoder.inference.grounding.verifier import SupportVerifier
from medcoder.inference.grounding.visit_level import visit_level
from medcoder.metrics.classification import binarize


def _token_membership(spans: Sequence[Span], token_offsets: np.ndarray) -> np.ndarray:
    """(n_spans, T) bool: token t overlaps span i (special and pad tokens never do)."""
    starts, ends = token_offsets[:, 0], token_offsets[:, 1]
    valid = starts >= 0
    if not spans:
        return np.zeros((0, len(token_offsets)), dtype=bool)
    s = np.array([sp[0] for sp in spans])[:, None]
    e = np.array([sp[1] for sp in spans])[:, None]
    return valid[None, :] & (starts[None, :] < e) & (s < ends[None, :])


def _tagged_spans(text: str, bio_tags: np.ndarray, token_offsets: np.ndarray) -> list[Span]:
    """The tagger's spans that may be evidence: none on an identification line. A tagger's run over the
    patient's name or SSN (a weak or freshly trained model tags what it has not learnt to skip) would
    hand who the patient is to whoever reads the prediction, as a window there would (`_window_at`)."""
    spans = spans_from_bio(bio_tags.tolist(), token_offsets.tolist(), text)
    return [span for span in spans if not is_identification_line(text, span[0])]


def _window_at(peak: int, token_offsets: np.ndarray, window_tokens: int, text: str) -> Span | None:
    """Whole words around token `peak`: up to `window_tokens` real tokens of its chunk centred on
    it, cut to its sentence or line and widened to word boundaries (a window must not show half a
    word, nor spill into a neighbouring sentence or a header line, whose context differs). None on an
    identification line (name, MRN, SSN, DOB, payer...): a window never quotes who the patient is."""
    if token_offsets[peak, 0] < 0 or is_identification_line(text, int(token_offsets[peak, 0])):
        return None
    first = last = peak
    half = window_tokens // 2
    while first > 0 and peak - first < half and token_offsets[first - 1, 0] >= 0:
        first -= 1
    while last < len(token_offsets) - 1 and last - first + 1 < window_tokens and token_offsets[last + 1, 0] >= 0:
        last += 1
    start, end = int(token_offsets[first, 0]), int(token_offsets[last, 1])
    sentence_start, sentence_end = sentence_at(text, int(token_offsets[peak, 0]))
    return word_span(text, max(start, sentence_start), min(end, sentence_end))


def _attention_windows(
    attention: np.ndarray,
    token_offsets: np.ndarray,
    window_tokens: int,
    text: str,
    max_spans: int,
    relative_peak: float = 0.25,
) -> tuple[Span, ...]:
    """Up to `max_spans` windows around the highest attention tokens, best first, one per sentence.

    An E/M level rests on several statements (patient status, problems addressed, data, risk), so
    its evidence is the top few sentences the E/M pool read rather than one peak; a lower peak in an
    already chosen sentence (which holds its window) adds nothing and is skipped, and so is a peak
    below `relative_peak` of the highest one (on a trained tiny model that cut removed 18 of 19
    windows off the gold evidence, keeping 18 of 29 on it). A code without tagged spans reads its
    mentions the same way (`ground_note`).
    """
    windows: list[Span] = []
    sentences: list[Span] = []
    floor = relative_peak * float(attention.max()) if attention.size else 0.0
    for t in np.argsort(-attention, kind="stable"):
        if len(windows) == max_spans or attention[t] <= 0 or attention[t] < floor:
            break
        start = int(token_offsets[t, 0])
        if start < 0 or any(s <= start < e for s, e in sentences):
            continue
        sentences.append(sentence_at(text, start))
        window = _window_at(int(t), token_offsets, window_tokens, text)
        if window is not None:
            windows.append(window)
    return tuple(windows)


def ground_note(
    note_id: str,
    text: str,
    setting: str | None,
    labels: Sequence[Label],
    code_scores: np.ndarray,
    attention: np.ndarray,
    bio_tags: np.ndarray,
    token_offsets: np.ndarray,
    threshold: float,
    em_probs: np.ndarray | None = None,
    em_attention: np.ndarray | None = None,
    max_spans: int = 3,
    min_span_mass: float = 0.05,
    relative_mass: float = 0.5,
    window_tokens: int = 5,
    verifier: SupportVerifier | None = None,
) -> NotePrediction:
    """One note's prediction. Shapes: code_scores (L,) probabilities, attention (L, T), bio_tags (T,)
    predicted tag ids, token_offsets (T, 2) with -1 for special/pad; T is all chunk tokens in order;
    em_probs (len(EM_CLASSES),), em_attention (T,) the E/M pool's weights.
    A code is predicted when its score is strictly above `threshold` (the rule of medcoder.metrics).
    A predicted E/M level gets up to `max_spans` windows of its attention as evidence (`_em_windows`).
    With a verifier whose `rescue_floor` is set, a code scored between the floor and the threshold is
    also considered, and suggested (for review) only when the verifier's support for a clean span of
    it is at least the verifier's `rescue_support`: the words a model has not seen in training ("community-acquired
    pneumonia confirmed on chest x-ray") can still reach their code, never silently.
    """
    tagged = _tagged_spans(text, bio_tags, token_offsets)
    membership = _token_membership(tagged, token_offsets).astype(np.float32)
    codes: list[PredictedCode] = []
    blocked: list[Label] = []
    blocked_status: list[tuple[str, str, str]] = []  # why each was blocked
    history: list[tuple[str, str, float, Span]] = []
    unsupported: list[Label] = []
    above = binarize(code_scores, threshold)
    # below the threshold but above `rescue_floor`: a suggestion only if the verifier finds its words
    rescue_floor = None if verifier is None else verifier.rescue_floor
    rescue = (code_scores > rescue_floor) & ~above if rescue_floor is not None else np.zeros_like(above)
    plain, by_status = (plain_sentences(text), status_sentences(text)) if verifier is not None else ([], {})
    doubted_clauses = doubted_diagnosis_clauses(text) if verifier is not None and setting == "inpatient" else []
    note_doubts = setting != "inpatient" and states_a_doubted_diagnosis(text)  # outside the hospital (IV.H)
    qualified = doubt_qualified_diagnoses(text) if verifier is not None and setting == "inpatient" else []
    plain = list(dict.fromkeys([*plain, *doubted_clauses, *qualified]))  # searched like plain ones at discharge (II.H)
    written = np.zeros(len(labels), dtype=bool)  # codes a plain sentence of the note states, however scored
    if rescue_floor is not None and verifier.search_unscored:  # and a code the note writes out, however scored
        written = written_out(text, labels, verifier, plain, by_status)
        rescue |= written & ~above
    rescued: set[Label] = {labels[col] for col in np.flatnonzero(rescue)}
    doubted = False  # a diagnosis blocked as uncertain (outpatient): its signs and symptoms are looked for
    for col in np.flatnonzero(above | rescue):
        label = labels[col]
        mass = membership @ attention[col] if tagged else np.zeros(0)
        candidates = [i for i in np.argsort(-mass, kind="stable") if mass[i] >= min_span_mass]
        if candidates:
            statuses = {i: _status(text, tagged[i], *label) for i in candidates}
            clean = [i for i in candidates if not blocks_grounding(statuses[i], setting, label[1])]
            evidence = (
                [tagged[i] for i in clean[:max_spans] if mass[i] >= relative_mass * mass[clean[0]]] if clean else []
            )
            only_blocked = not clean
            grounded = bool(evidence)
            historical = [tagged[i] for i in candidates if statuses[i] == HISTORICAL]
        else:  # no tagged span: the windows around its attention peaks, one per sentence, as its mentions
            windows = _attention_windows(attention[col], token_offsets, window_tokens, text, max_spans, relative_mass)
            statuses = dict(enumerate(_status(text, w, *label) for w in windows))
            # blocked only when every mention it read is: "No liver metastases seen" under the peak does not
            # outweigh "CT confirmed liver metastases" a little lower (as with tagged spans)
            clean_windows = [w for i, w in enumerate(windows) if not blocks_grounding(statuses[i], setting, label[1])]
            only_blocked = bool(windows) and not clean_windows
            evidence = clean_windows[:1]
            grounded = bool(evidence) and any(s < evidence[0][1] and evidence[0][0] < e for s, e in tagged)
            historical = [w for i, w in enumerate(windows) if statuses[i] == HISTORICAL]
        if only_blocked:
            doubted = doubted or any(s == UNCERTAIN for s in statuses.values())
            # its attention sat on a blocked mention ("FHx: mother - hypothyroidism" read for E03.9) while a plain
            # sentence states the code ("Pt: hypothyroidism dx 2015, on levothyroxine"): the search of the note
            # decides, at the rescue bar, as for a code under the threshold. A past mention keeps its history path.
            if label not in rescued and written[col] and not historical:
                rescued.add(label)
            if label in rescued:
                codes.append(PredictedCode(label[0], label[1], float(code_scores[col]), (), False))
                continue
            blocked.append(label)
            blocked_status.append((*label, _blocking_status(statuses.values(), setting, label[1])))
            if historical:
                history.append((*label, float(code_scores[col]), historical[0]))
            continue
        codes.append(PredictedCode(label[0], label[1], float(code_scores[col]), tuple(sorted(evidence)), grounded))
    fallbacks: list[tuple[str, str, str, float, bool]] = []
    if verifier is not None:
        codes = _verified(codes, text, setting, verifier, max_spans, unsupported, plain, fallbacks, by_status)
        if verifier.rejected_action == "drop":  # a rejection like the verifier's own: "review" keeps them
            codes = _explained_away(codes, fallbacks, unsupported)
        codes = _quote_mentions(codes, text, setting, verifier, max_spans)
        if note_doubts:
            codes, doubted_here = _doubted_diagnoses(codes, text, verifier)
            blocked += doubted_here
            blocked_status += [(*label, UNCERTAIN) for label in doubted_here]
            doubted = doubted or bool(doubted_here)
        # a rescued code stays only when its text clearly supports it; it keeps its (sub-threshold)
        # score, so routing sends it to review as low confidence unless the text states it (`stated`)
        codes = [
            c
            for c in codes
            if (c.system, c.code) not in rescued
            or (c.grounded and (c.support or 0.0) >= verifier.rescue_support and _names_its_text(c, text, verifier))
        ]
        # "possible COVID-19" is not coded even at discharge (I.C.1.g.1.a): not on a doubted clause alone
        # and not on a diagnosis joined to its doubt where the quote reaches the doubt ("fever and cough, possible
        # COVID-19"); "COVID-19 pneumonia" of "COVID-19 pneumonia, likely bacterial superinfection" stays
        codes = [c for c in codes if not (is_confirmed_only(c.code) and _doubted(c.evidence, doubted_clauses, qualified,
                                                                                  text))]  # fmt: skip
        # every decision made: each quote shows the words that say its code, not the whole line (quotes.py)
        codes = narrowed_quotes(codes, text, verifier, COMBINATION_PARTS)
    blocked = [b for b in blocked if b not in rescued]
    blocked_status = [b for b in blocked_status if b[:2] not in rescued]
    outside = _outside_diagnoses(text, plain, verifier) if verifier is not None else ()
    history = [h for h in history if (h[0], h[1]) not in rescued]
    stated_past: list[tuple[str, str, float, Span]] = []  # a past condition the model did not score
    if rescue_floor is not None and verifier.search_unscored:
        known = {(c.system, c.code) for c in codes} | {(h[0], h[1]) for h in history}
        stated_past = _stated_past_conditions(text, by_status.get(HISTORICAL, []), verifier, known)
    if verifier is not None and history:  # a past mention becomes a history code only if it names that condition
        index = verifier.label_index
        support = verifier.support([text[h[3][0] : h[3][1]] for h in history], [index[(h[0], h[1])] for h in history])
        # the guideline layer codes these grounded, so they need the grounding bar, not just the threshold; the
        # history code's score is that support, as the model's score is for the current disease ("remote inferior
        # MI" scores I21.4 low, rightly), not for the history of it (I25.2) that the words state
        history = [(h[0], h[1], float(p), h[3]) for h, p in zip(history, support) if verifier.grounds(float(p))]
    history += stated_past  # read on the condition's own words at rescue_support, stricter than the grounding bar
    unsupported = [u for u in unsupported if u not in rescued]
    codes.sort(key=lambda c: -c.score)
    signs: list[tuple[str, str, float, Span]] = []
    # a doubted diagnosis is coded by its signs outside the hospital, and everywhere for the codes of
    # confirmed cases only ("possible COVID-19" at discharge: fever and cough, I.C.1.g.1.a)
    doubted_confirmed_only = doubted and any(is_confirmed_only(code) for _, code in blocked)
    outpatient_doubt = (setting != "inpatient" and doubted) or note_doubts
    if verifier is not None and (outpatient_doubt or doubted_confirmed_only):
        present = {(c.system, c.code) for c in codes}
        signs = _documented_signs(text, [lb for lb in verifier.labels if lb not in present], verifier)

    em_code, em_score, em_evidence = None, None, ()
    visit = visit_level(em_probs, text) if em_probs is not None else None
    if visit is not None:
        em_code, em_score = visit.code, visit.score
        attended = ()
        if em_attention is not None:
            attended = _attention_windows(em_attention, token_offsets, window_tokens, text, max_spans)
        # the attention's sentences best first, then the words that state the patient's status if none of them holds it
        status = [s for s in visit.status_evidence[:1] if not any(a <= s[0] and s[1] <= b for a, b in attended)]
        em_evidence = (*attended, *status)
    return NotePrediction(id=note_id, codes=tuple(codes), em_code=em_code, em_score=em_score, em_evidence=em_evidence,
                          context_blocked=tuple(blocked), context_blocked_status=tuple(blocked_status),
                          historical_mentions=tuple(history),
                          documented_signs=tuple(signs), verifier_rejected=tuple(unsupported),
                          outside_diagnoses=outside,
                          specificity_fallbacks=tuple(f for f in fallbacks if (f[0], f[1]) not in rescued))  # fmt: skip


def _blocking_status(statuses: Iterable[str | None], setting: str | None, code: str) -> str:
    """The status that blocked a code all of whose mentions block it: the first of PRIORITY among them
    ("no HTN" beside "h/o HTN" is negated)."""
    found = {s for s in statuses if blocks_grounding(s, setting, code)}
    return next(s for s in PRIORITY if s in found)


def _stated_past_conditions(
    text: str, stating_history: Sequence[Span], verifier: SupportVerifier, known: set[Label]
) -> list[tuple[str, str, float, Span]]:
    """Past conditions with a history code (codes.history) that a sentence stating a history names, whatever
    the model scored, as historical mentions (system, code, support, clause) for the guideline layer to code as
    their history: "He had a heart attack in 2015" -> I25.2, "s/p stroke" -> Z86.73. A model that learnt "old
    MI" scores a heart attack told as a story low; the verifier reads the condition's name
    (`past_condition_words`) at `rescue_support`, as for any code the model did not score, and the context
    check must read that name as past for that code (a cancer still treated is current). Not on a sentence
    about a relative, not for a label already coded or already found as a past mention (`known`). The clause
    is the quote ("He had a stroke two years ago with full recovery": the words and the status that make it a
    history code); the score is the support of the condition's name, which passed rescue_support (the story
    around it dilutes the support of the whole clause below the grounding bar: 0.71 for I63.9 there)."""
    named = [
        (clause, words)
        for clause in sorted(stating_history, key=lambda s: s[1] - s[0])  # the clause before its whole sentence
        if not has_trigger(_sentence_of(text, clause), (FAMILY,)) and (words := past_condition_words(text, clause))
    ]
    if not named:
        return []
    found = []
    support = verifier.support_matrix([text[a:b] for _, (a, b) in named])
    for (clause, words), row in zip(named, support):
        for j in np.flatnonzero(row >= max(verifier.rescue_support, row.max() - RESCUE_SUPPORT_GAP)):
            system, code = verifier.labels[j]
            if (
                (system, code) not in known
                and history_code(system, code) is not None
                and _status(text, words, system, code) == HISTORICAL
                and not is_malignancy_on_treatment(text, *words, system, code)
            ):
                found.append((system, code, float(row[j]), clause))
                known.add((system, code))
    return found


def _outside_diagnoses(text: str, plain: Sequence[Span], verifier: SupportVerifier) -> tuple[tuple[str, Span], ...]:
    """(ICD-10-CM category, clause) for each diagnosis outside the label space that a plainly asserting clause of
    the note's diagnostic statements states (`SupportVerifier.outside_categories`), each category once."""
    diagnostic = [s for s in plain if in_diagnostic_statement(text, s[0])]
    found: dict[str, Span] = {}
    for span, categories in zip(diagnostic, verifier.outside_categories([text[a:b] for a, b in diagnostic])):
        for category in categories:
            found.setdefault(category, span)
    return tuple(found.items())


def _doubted(evidence: Sequence[Span], doubted: Sequence[Span], qualified: Sequence[Span], text: str) -> bool:
    """Whether every evidence span is doubt: inside a doubted clause, or inside a diagnosis joined to its doubt
    (`doubt_qualified_diagnoses`) and reaching past the comma into the doubt (and there is evidence)."""

    def doubt(s: int, e: int) -> bool:
        return any(a <= s and e <= b for a, b in doubted) or any(
            a <= s and e <= b and e > text.rfind(",", a, b) for a, b in qualified
        )

    return bool(evidence) and all(doubt(s, e) for s, e in evidence)


def _value_quote(text: str, code: str, spans: tuple[Span, ...]) -> tuple[Span, ...]:
    """The quote of a value-decided code (BMI band, CKD stage, prediabetes) whose reading documents
    its value: `spans` when they carry the value, else the clause of their sentence that does."""
    if value_supports(code, " ".join(text[a:b] for a, b in spans)):
        return spans
    note_clauses = clauses(text)
    for sentence in dict.fromkeys(sentence_at(text, a) for a, _ in spans):
        for a, b in note_clauses:
            if sentence[0] <= a and b <= sentence[1] and value_supports(code, text[a:b]):
                return ((a, b),)
    return spans


def _doubted_diagnoses(
    codes: list[PredictedCode], text: str, verifier: SupportVerifier
) -> tuple[list[PredictedCode], list[Label]]:
    """(codes kept, diagnoses taken out as doubted) for an outpatient note that doubts a diagnosis.

    "c/o dysuria and urinary frequency. A: r/o UTI" doubts the UTI; the symptoms are not the UTI,
    even where the model's attention and the verifier land on them. A diagnosis code (not a sign or
    symptom) is taken out when a doubted clause of the note reads as that code (the verifier accepts it)
    better than the code's own evidence does ("abdominal pain with nausea" beside "possible early
    appendicitis"); "Known UTI ... r/o pyelonephritis" keeps the UTI. The guidelines code the symptoms instead
    (Section IV.H), which `_documented_signs` then looks for."""
    doubting = [c for c in clauses(text) if is_doubted(text, c)]
    diagnoses = [c for c in codes if c.system == ICD10CM and not is_sign_or_symptom(c.code)]
    if not doubting or not diagnoses:
        return codes, []
    index = verifier.label_index
    pairs = [(c, clause) for c in diagnoses for clause in doubting]
    support = verifier.support([text[a:b] for _, (a, b) in pairs], [index[(c.system, c.code)] for c, _ in pairs])
    read_as: dict[Label, float] = {}
    for (c, _), p in zip(pairs, support):
        if verifier.accepts(float(p)):  # about the code at all: its own evidence then has to say it better
            read_as[(c.system, c.code)] = max(float(p), read_as.get((c.system, c.code), 0.0))
    # the doubted clause is the better reading when the code's own evidence says it less, or does not ground it
    # (an exam finding under "possible COPD versus asthma": the note names the diagnosis only in doubt)
    doubted = [c for c in diagnoses if (c.system, c.code) in read_as
               and (read_as[(c.system, c.code)] > (c.support or 0.0) or not c.grounded)]  # fmt: skip
    out = {(c.system, c.code) for c in doubted}
    return [c for c in codes if (c.system, c.code) not in out], [(c.system, c.code) for c in doubted]


def _clause_at(text: str, span: Span, sentence: Span) -> Span:
    """`span` widened to its clause within `sentence` ("exertion" -> "Shortness of breath on exertion
    for 6 months"), whole words, edges trimmed: what a coder quotes when the tagger marked a fragment."""
    before = [m.end() for m in CLAUSE_END.finditer(text, sentence[0], span[0])]
    after = CLAUSE_END.search(text, span[1], sentence[1])
    clause = word_span(text, before[-1] if before else sentence[0], after.start() if after else sentence[1])
    return span if clause is None else (min(clause[0], span[0]), max(clause[1], span[1]))


def _support_texts(text: str, evidence: Sequence[Span]) -> list[tuple[str, tuple[Span, ...]]]:
    """The readings of a code's evidence the verifier judges, each with the spans it quotes: every
    span alone, in its clause and in its sentence, and all spans joined (a combination code such as
    I12.9 rests on two mentions, "hypertension" and "CKD stage 3", neither of which says it alone). A
    span that does not say the code alone is quoted as its clause: the verifier accepted words beyond
    the tagger's fragment ("exertion" for shortness of breath), and the quote must show them. Spans
    in a coding instruction ("assign E66.01") are not documentation and give no reading."""
    out, documented = [], []
    for span in evidence:
        sentence = sentence_at(text, span[0])
        if is_coding_instruction(text[sentence[0] : sentence[1]]):
            continue
        documented.append(span)
        out.append((text[span[0] : span[1]], (span,)))
        clause = _clause_at(text, span, sentence)
        for reading in dict.fromkeys((clause, sentence)):
            if reading != span:
                out.append((text[reading[0] : reading[1]], (clause,)))
    if len(documented) > 1:
        out.append(("; ".join(text[s:e] for s, e in documented), tuple(documented)))
    return out


def tagged_readings(text: str, bio_tags: np.ndarray, token_offsets: np.ndarray) -> list[str]:
    """The texts the verifier will read for a note's tagged spans (each span, its clause and its line:
    `_support_texts`), for its prefetch: embedded with the note's sentences in a few large encoder
    passes rather than in the small per-note passes of `_verified`."""
    out: list[str] = []
    for span in _tagged_spans(text, bio_tags, token_offsets):
        sentence = sentence_at(text, span[0])
        clause = _clause_at(text, span, sentence)
        out += [text[a:b] for a, b in (span, clause, sentence)]
    return out


def _verified(
    codes: list[PredictedCode],
    text: str,
    setting: str | None,
    verifier: SupportVerifier,
    max_spans: int,
    rejected: list[Label],
    plain: Sequence[Span] = (),
    fallbacks: list[tuple[str, str, str, float, bool]] | None = None,
    by_status: dict[str, list[Span]] | None = None,
) -> list[PredictedCode]:
    """`codes` with `support` set and `grounded` only where the quoted text supports the code.

    One encoder call for the whole note. A reading of the evidence the verifier accepts makes the
    accepted spans the evidence (best supported first, up to `max_spans`); the code is then grounded
    when (1) the best support reaches the verifier's grounding bar, and (2) the documentation is as
    specific as the code (`specificity.check_documentation`: "type 2 diabetes" does not say E11.65).
    A code the text is about but does not ground stays, ungrounded, for review; one that fails (2)
    also lists in `fallbacks` the label the documentation does support, if any (its category's
    unspecified code, or the sibling a documented detail specifies): the guideline layer codes that
    instead. A value code (BMI -> Z68) is rejected when every reading that documents a value
    contradicts it.
    A code without an accepted reading is left out and appended to `rejected` (verifier.rejected_action
    "drop", the default: the model was sure, the text says otherwise, a hallucination a reviewer should
    not have to wade through), or kept ungrounded for review ("review") with its score capped at its
    support (the score says how sure the coder is that the code applies to THIS text, which cannot
    exceed how well the text supports it)."""
    index = verifier.label_index
    label_codes = [code for _, code in verifier.labels]  # candidates for a more specific sibling

    # (reading, spans it quotes, found by searching the note rather than on the model's own evidence)
    def searched(c: PredictedCode) -> list[Span]:  # plain sentences, and those stating the code's own status
        extra = (by_status or {}).get(stated_status(c.system, c.code) or "", [])
        return [s for s in dict.fromkeys([*plain, *extra]) if s not in c.evidence]

    readings = [[(t, spans, False) for t, spans in _support_texts(text, c.evidence)]
                + [(text[a:b], ((a, b),), True) for a, b in searched(c)]
                for c in codes]  # fmt: skip
    pairs = [(t, index[(c.system, c.code)]) for c, rs in zip(codes, readings) for t, _, _ in rs]
    probs = iter(verifier.support([t for t, _ in pairs], [j for _, j in pairs]) if pairs else [])
    out, unspecific = [], []
    for c, rs in zip(codes, readings):
        scored = [(float(next(probs)), spans, searched, t) for t, spans, searched in rs]
        # a documented value outranks similarity: when every reading that documents a value contradicts
        # the code ("O: BMI 36.1" for Z68.34), its name-only readings ("BMI") cannot support it
        verdicts = [value_supports(c.code, r[3]) if c.system == ICD10CM else None for r in scored]
        # a reading that documents the value quotes the words that carry it ("ckd stg 4", not "htn")
        scored = [(p, _value_quote(text, c.code, spans), s, t) if v else (p, spans, s, t)
                  for (p, spans, s, t), v in zip(scored, verdicts)]  # fmt: skip
        if any(v is not None for v in verdicts) and not any(verdicts):
            scored = [r for r, v in zip(scored, verdicts) if v is not None]
        scored.sort(key=lambda x: -x[0])
        # the model's own evidence needs the verifier's threshold; a sentence found by searching the note
        # needs the stricter rescue_support (it is text the model did not point at). Every accepted
        # reading is quoted, best first: the model's own and the searched sentences that say the code
        accepted = [
            spans
            for p, spans, searched, _ in scored
            if (p >= verifier.rescue_support if searched else verifier.accepts(p))
        ]
        best = max((p for p, _, searched, _ in scored if not searched or p >= verifier.rescue_support), default=0.0)
        if accepted:
            evidence = _disjoint(span for spans in accepted for span in spans)[:max_spans]
            unmet, joined = _documentation(text, c.system, c.code, evidence, setting)
            evidence = tuple(sorted(dict.fromkeys(evidence + joined)))
            if unmet is None and not verifier.grounds(best) and c.code in COMBINATION_PARTS:
                best = max(best, _parts_support(c.code, [r[3] for r in scored], verifier))
            grounded = unmet is None and verifier.grounds(best)
            # a family or personal history code is stated by a sentence that states that status ("dad had
            # MI at 48") and names the condition at rescue_support: the history is said in other words
            # than the code's ("family history of ischemic heart disease"), but said
            own_status = (by_status or {}).get(stated_status(c.system, c.code) or "", ())
            says_history = any(
                p >= verifier.rescue_support and any(a <= spans[0][0] and spans[-1][1] <= b for a, b in own_status)
                for p, spans, _, _ in scored
            )
            stated = grounded and (verifier.states(best) or says_history)
            out.append(replace(c, evidence=evidence, grounded=grounded, support=best, stated=stated))
            if unmet is not None and unmet.rule.kind == "requires":  # documented less specifically
                unspecific += [(out[-1], f) for f in [fallback_for(c.code)] if f and (c.system, f) in index]
            elif unmet is not None:  # documented more specifically: a label sibling the detail specifies
                unspecific += [(out[-1], f) for f in specific_siblings(c.code, label_codes) if (c.system, f) in index]
        elif verifier.rejected_action == "review":  # no confidence beyond what the text supports
            out.append(replace(c, grounded=False, support=best, score=min(c.score, best)))
        else:
            rejected.append((c.system, c.code))
    if fallbacks is not None and unspecific:
        fallbacks += _fallbacks(text, setting, verifier, unspecific)
    return out


def _explained_away(
    codes: list[PredictedCode], fallbacks: Sequence[tuple[str, str, str, float, bool]], rejected: list[Label]
) -> list[PredictedCode]:
    """`codes` without the ungrounded ones whose every quoted span is the evidence of a code of the same
    system that those words ground; those are appended to `rejected`. The words are accounted for: the
    model put cellulitis (L03.115) on the words that ground osteoarthritis, E11.22 on "Chronic kidney
    disease stage 4 of unclear cause" that grounds N18.4, H61.22 (left ear) on the words that ground
    H61.21 (right ear). A reviewer would only dismiss them. A code the guideline layer recodes at the
    documented specificity (`fallbacks`) stays: the layer replaces it."""
    recoded = {(f[0], f[1]) for f in fallbacks}
    grounded: dict[str, list[Span]] = {}
    for c in codes:
        if c.grounded:
            grounded.setdefault(c.system, []).extend(c.evidence)
    out = []
    for c in codes:
        spans = grounded.get(c.system, [])
        if (
            not c.grounded
            and c.evidence
            and (c.system, c.code) not in recoded
            and all(any(s < e2 and s2 < e for s2, e2 in spans) for s, e in c.evidence)
        ):
            rejected.append((c.system, c.code))
            continue
        out.append(c)
    return out


def _quote_mentions(
    codes: list[PredictedCode], text: str, setting: str | None, verifier: SupportVerifier, max_spans: int
) -> list[PredictedCode]:
    """`codes` with, for each grounded code, up to `max_spans` more clauses of the note's final
    diagnostic statements (`sentences.diagnostic_clauses`) that state it (`SupportVerifier.quotes`,
    and a current mention by the context check) added to its evidence, best first. The model points
    at one mention, often in the history; the coder checks the final diagnostic statement too
    ("Impression: Chest pain, possibly due to GERD" beside "CC: chest pain"). Grounding itself is
    unchanged: these quotes only show the work."""
    spans = diagnostic_clauses(text)
    if not spans or not any(c.grounded for c in codes):
        return codes
    support = verifier.support_matrix([text[a:b] for a, b in spans])  # (clauses, verifier labels)
    out = []
    for c in codes:
        if not c.grounded:
            out.append(c)
            continue
        column = support[:, verifier.label_index[(c.system, c.code)]]
        more = [
            spans[i]
            for i in np.argsort(-column, kind="stable")
            if verifier.quotes(float(column[i]))
            and not any(spans[i][0] < e and s < spans[i][1] for s, e in c.evidence)
            and not blocks_grounding(_status(text, spans[i], c.system, c.code), setting, c.code)
        ]
        out.append(replace(c, evidence=tuple(sorted(c.evidence + tuple(more[:max_spans])))) if more else c)
    return out


# combination codes and the conditions they combine (code prefixes): "HTN; CKD3" names each part in
# its own words but the combination in none, so a sentence encoder hears it only weakly
COMBINATION_PARTS: dict[str, tuple[str, ...]] = {
    "I11.0": ("I10", "I50"), "I12.0": ("I10", "N18"), "I12.9": ("I10", "N18"),
    "I13.0": ("I10", "I50", "N18"), "I13.2": ("I10", "I50", "N18"), "E11.22": ("E11", "N18"),
}  # fmt: skip


def _parts_support(code: str, readings: Sequence[str], verifier: SupportVerifier) -> float:
    """The support of a combination code through its parts: each part's best support (any label of its
    category, on any of the code's readings), the weakest part counting. The guidelines presume the
    link of hypertension with heart and kidney disease and of diabetes with CKD (I.C.9.a, I.A.15), so
    documenting both parts documents the combination."""
    weakest = 1.0
    for prefix in COMBINATION_PARTS[code]:
        parts = part_columns(verifier, prefix, COMBINATION_PARTS)
        pairs = [(t, j) for t in readings for j in parts]
        if not pairs:
            return 0.0
        weakest = min(weakest, float(verifier.support([t for t, _ in pairs], [j for _, j in pairs]).max()))
    return weakest


def _disjoint(spans: Iterable[Span]) -> tuple[Span, ...]:
    """`spans` in order, each left out when it overlaps one already kept (a fragment and its clause
    quote the same words once: the better supported reading, which comes first)."""
    kept: list[Span] = []
    for a, b in spans:
        if not any(a < e and s < b for s, e in kept):
            kept.append((a, b))
    return tuple(kept)


def _fallbacks(
    text: str, setting: str | None, verifier: SupportVerifier, candidates: Sequence[tuple[PredictedCode, str]]
) -> list[tuple[str, str, str, float, bool]]:
    """(system, code, fallback, support, grounded) for codes documented less (or more) specifically than
    coded: each candidate is judged on the code's own evidence, and offered only when the verifier
    accepts it there and its own documentation check passes (E11.9 is not offered beside
    "uncontrolled"); of several, the best supported."""
    readings = [(c, f, t) for c, f in candidates for t, _ in _support_texts(text, c.evidence)]
    if not readings:
        return []
    index = verifier.label_index
    probs = verifier.support([t for _, _, t in readings], [index[(c.system, f)] for c, f, _ in readings])
    best: dict[tuple[str, str], float] = {}
    for (c, f, _), p in zip(readings, probs):
        best[(c.code, f)] = max(best.get((c.code, f), 0.0), float(p))
    chosen: dict[str, tuple[str, str, str, float, bool]] = {}
    for c, f in sorted(candidates, key=lambda cf: -best.get((cf[0].code, cf[1]), 0.0)):  # best supported first
        support = best.get((c.code, f), 0.0)
        if c.code in chosen or not verifier.accepts(support):
            continue
        if _documentation(text, c.system, f, c.evidence, setting)[0] is None:
            chosen[c.code] = (c.system, c.code, f, support, verifier.grounds(support))
    return list(chosen.values())


def _documentation(
    text: str, system: str, code: str, evidence: Sequence[Span], setting: str | None
) -> tuple[Unmet | None, tuple[Span, ...]]:
    """`specificity.check_documentation` on the sentences (and section headers) the evidence quotes;
    a `note`-scope requirement may be met by a current mention anywhere in the note."""
    if system != ICD10CM:
        return None, ()
    quoted = [bounds for span in evidence for bounds in _quoted_context(text, span)]
    return check_documentation(
        code, text, quoted, lambda start, end: not _blocked(text, start, end, setting),
        lambda pattern: _current_mention(text, pattern, setting),
    )  # fmt: skip


def _blocked(text: str, start: int, end: int, setting: str | None) -> bool:
    """The context check's verdict on a mention, as for any evidence (an uncertain diagnosis at
    inpatient discharge is coded as if established, Section II.H)."""
    match = detect_context(text, start, end)
    return match is not None and blocks_grounding(match.status, setting)


def _quoted_context(text: str, span: Span) -> list[Span]:
    """The sentence holding `span`, and the header of its section when one stands alone on a line
    above it ("Allergies:" over "- penicillin (hives)"), up to a blank line."""
    out = [sentence_at(text, span[0])]
    line_start = text.rfind("\n", 0, span[0]) + 1
    while line_start > 0:
        previous = text.rfind("\n", 0, line_start - 1) + 1
        line = text[previous : line_start - 1].strip()
        if not line:
            break
        if line.endswith(":"):
            out.append((previous, line_start - 1))
            break
        line_start = previous
    return out


def _current_mention(text: str, pattern: re.Pattern[str], setting: str | None) -> Span | None:
    """The first mention matching `pattern` in a sentence of the note that the context check does
    not block (`_blocked`), off identification lines."""
    for a, b in sentences(text):
        for m in pattern.finditer(text, a, b):
            if m.end() > m.start() and not _blocked(text, m.start(), m.end(), setting):
                return m.start(), m.end()
    return None


# words a code text uses for "which one" rather than "what": not a finding by themselves
_GENERIC = {"unspecified", "other", "specified", "nos", "not elsewhere classified", "nec"}


@functools.lru_cache(maxsize=1024)
def _finding_terms(system: str, code: str) -> re.Pattern[str] | None:
    """The plain words a sign or symptom code is written with (its description and inclusion terms
    without "unspecified"/"NOS", its clinical synonyms, and their abbreviations), as one whole-word,
    case-insensitive pattern that also takes the plural ("fevers"); None when it has none of 3+ letters."""
    pieces = {piece.strip(" .").lower() for t in code_texts(system, code) for piece in re.split(r"[,;(\[\]]", t)}
    terms = {re.sub(r"\bnos\b", "", p).strip() for p in pieces if p.strip() and p.strip() not in _GENERIC}
    terms |= {abbr for abbr, expansion in abbreviations().items() if expansion.lower() in terms}
    terms = {t for t in terms if len(t) >= 3 and t not in _GENERIC}
    if not terms:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, t.split())) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![\w/])(?:{alternatives})(?:e?s)?(?![\w/])", re.IGNORECASE)


def _documented_signs(
    text: str, candidates: Sequence[Label], verifier: SupportVerifier
) -> list[tuple[str, str, float, Span]]:
    """Sign and symptom codes among `candidates` that the note names in the code's own words
    (`_finding_terms`) in a mention the context check leaves as current, where the verifier also
    accepts the named words:
    (system, code, support, span of the words), first mention each. Whatever the model scored them:
    a model taught that fever is integral to pneumonia scores fever low beside "probable pneumonia",
    where the guidelines want the fever coded. Whole sentences are not judged by the verifier: one
    that names two symptoms supports neither enough on its own."""
    signs = [lb for lb in candidates if lb[0] == ICD10CM and is_sign_or_symptom(lb[1])]
    note_spans = sentences(text)
    # the sentence that doubts a diagnosis is where a coder reads its symptoms ("Headache - questionable
    # migraine"), so its mentions come first; then the others, in note order
    doubting = [s for s in note_spans if states_a_doubted_diagnosis(text[s[0] : s[1]])]
    ordered = doubting + [s for s in note_spans if s not in doubting]
    found: list[tuple[Label, Span]] = []
    for label in signs:
        pattern = _finding_terms(*label)
        mentions = (m for a, b in (ordered if pattern else ()) for m in pattern.finditer(text, a, b))
        # a current mention by the context check, as for any evidence: not "no fever", not "return
        # precautions reviewed, including chest pain", not the doubted diagnosis itself
        span = next(
            ((m.start(), m.end()) for m in mentions if _status(text, (m.start(), m.end()), *label) is None), None
        )
        if span is not None:
            found.append((label, span))
    if not found:
        return []
    index = verifier.label_index
    support = verifier.support([text[a:b] for _, (a, b) in found], [index[label] for label, _ in found])
    return [(*label, float(p), span) for (label, span), p in zip(found, support) if verifier.grounds(float(p))]


# how far below the best label's support a rescued code's own support may be on its text (a sentence that
# lists findings supports each of them nearly as well: "fever and cough" for R50.9 and R05.9)
RESCUE_SUPPORT_GAP = 0.05


def _names_its_text(code: PredictedCode, text: str, verifier: SupportVerifier) -> bool:
    """A rescued code (one the model did not score) must be what its quoted text names, not a label that
    shares a few of its words: "Dx: chest pain, unspecified" supports R05.9 (cough, unspecified) at 0.9
    through "unspecified", and R07.9 (chest pain, unspecified) far more. So the code's support on one of
    its spans must come within RESCUE_SUPPORT_GAP of the best support any label of its own code system has
    there: a diagnosis competes with diagnoses, not with the service the same words describe ("Flu shot given
    today" states the vaccine product, 90686, and the encounter for immunization, Z23, both)."""
    support = verifier.support_matrix([text[a:b] for a, b in code.evidence])
    own = support[:, verifier.label_index[(code.system, code.code)]]
    same_system = np.array([system == code.system for system, _ in verifier.labels])
    return bool(np.any(own >= support[:, same_system].max(axis=1) - RESCUE_SUPPORT_GAP))


def _status(text: str, span: Span, system: str, code: str) -> str | None:
    ignore = exempt_statuses(system, code) | ({HISTORICAL} if ongoing_condition(system, code) else set())
    match = detect_context(text, span[0], span[1], subject_of(system, code), ignore=ignore)
    if match is None and (
        is_dated_acute_event(text, span[1], system, code) or is_eradicated_malignancy(text, *span, system, code)
    ):
        return HISTORICAL
    # a cancer still treated is current however it is dated or told ("breast cancer diagnosed in 2019, on
    # tamoxifen"): the history code (Z85) is for one excised or eradicated with no further treatment (I.C.2.d)
    if match is not None and match.status == HISTORICAL and is_malignancy_on_treatment(text, *span, system, code):
        return None
    # a disease named as what a test looks for is no diagnosis: "COVID-19" of "COVID-19 PCR sent" (the assessment
    # said "likely COVID-19"), "strep" of "strep test"; the test itself is coded as a procedure, whatever its result
    named = text[span[0] : span[1]]
    if (
        match is None
        and subject_of(system, code) == "condition"
        and (_TEST_OF.match(text, span[1]) or _ENDS_WITH_TEST.search(named))
    ):
        return HYPOTHETICAL
    # a personal history code (Z85-Z87) is not the patient's on a sentence about a relative ("His father died of
    # colon cancer at 61" read as Z85.038): the relative may be the span's own subject, where no trigger precedes it
    if match is None and stated_status(system, code) == HISTORICAL and has_trigger(_sentence_of(text, span), (FAMILY,)):
        return FAMILY
    return match.status if match else None


# the words right after a disease's name that make it the name of a test for it (after the span, or ending it)
_TEST_WORDS = (
    r"(?:PCR|NAAT|rapid\s+test|test(?:ing)?|swab|antigen|antibod(?:y|ies)|serolog\w*|titers?|screen(?:ing)?|culture)"
)
_TEST_OF = re.compile(rf"[ \t]*{_TEST_WORDS}\b", re.IGNORECASE)
_ENDS_WITH_TEST = re.compile(rf"\S\s+{_TEST_WORDS}\W*$", re.IGNORECASE)


def _sentence_of(text: str, span: Span) -> str:
    start, end = sentence_at(text, span[0])
    return text[start : max(end, span[1])]
