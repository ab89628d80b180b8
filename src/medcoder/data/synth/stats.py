"""Measure the corpus from its records: phenomenon rates, code frequencies, E/M mix, token lengths.

Everything is computed from the written records (text, codes, mentions), never from generator
internals, so the same functions describe any corpus in the contract format and the numbers in
the data card are what a user would measure themselves. `PHENOMENON_TARGETS` (catalog.py) are the
rates the generator is tuned to; tests check a 3000-note corpus against them.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from medcoder.codes.em import VISIT_EM_CODES
from medcoder.data.schema import NoteRecord
from medcoder.data.synth.catalog import CORE_ICD_CODES, MISSPELLINGS, PHENOMENON_TARGETS, target_tolerance

LONG_NOTE_TOKENS = 512
# A code's evidence that is a measured value: "A1c 9.8%", "BMI 41.2", "FEV1/FVC 0.62".
VALUE_EVIDENCE = re.compile(
    r"^(hemoglobin a1c|hba1c|a1c)( of)? \d+(\.\d)?%$|^bmi:? \d+(\.\d)?( kg/m2)?$|^fev1/fvc( ratio| of)? 0\.\d\d$", re.I
)
# An inpatient diagnosis still qualified as uncertain, right before its evidence span.
UNCERTAIN_BEFORE = re.compile(r"\b(probable|suspected|likely|possible|presumed)\s+(a\s+)?$", re.I)
_MISSPELLED = {m.lower() for m in MISSPELLINGS}
# Diagnoses of the core list (not symptoms R, not status/history Z): the codes a distractor
# must not pull a coder into.
CORE_DIAGNOSES = frozenset(c for c in CORE_ICD_CODES if not c.startswith(("R", "Z")))


def token_counts(records: Sequence[NoteRecord], tokenizer: Any) -> list[int]:
    """Word pieces per note as the encoder sees them (special tokens included, no truncation)."""
    encoded = tokenizer([r.text for r in records], add_special_tokens=True, truncation=False, verbose=False)[
        "input_ids"
    ]
    return [len(ids) for ids in encoded]


def _phenomena(record: NoteRecord) -> set[str]:
    found = {f"mention:{m.status}" for m in record.mentions}
    text = record.text
    for c in record.codes:
        if c.system != "ICD-10-CM":
            if c.code not in VISIT_EM_CODES:
                found.add("procedure")
            continue
        for start, end in c.evidence:
            span = text[start:end]
            if VALUE_EVIDENCE.match(span):
                found.add("value")
            if UNCERTAIN_BEFORE.search(text[max(0, start - 30) : start]):
                found.add("uncertain_coded")
    for c in record.codes:
        for start, end in c.evidence:
            if text[start:end].lower() in _MISSPELLED:
                found.add("misspelled")
        if c.system == "ICD-10-CM" and c.code in CORE_DIAGNOSES and len(c.evidence) == 1:
            found.add("single_mention")
    gold = {c.code for c in record.codes}
    distractor = ("negated", "family", "historical", "hypothetical") + (
        ("uncertain",) if record.setting == "outpatient" else ()
    )
    if any(m.status in distractor and m.code in CORE_DIAGNOSES and m.code not in gold for m in record.mentions):
        found.add("core_distractor")
    return found


def phenomenon_rates(
    records: Sequence[NoteRecord], tokenizer: Any = None, lengths: Sequence[int] | None = None
) -> dict[str, float]:
    """Share of notes showing each phenomenon; keys match catalog.PHENOMENON_TARGETS.

    Denominators: all notes, except uncertain_outpatient and procedures_outpatient (outpatient
    notes) and uncertain_inpatient_coded (inpatient notes). longer_than_512_tokens needs a
    tokenizer, or `lengths` already measured with one (token_counts).
    """
    if not records:
        raise ValueError("phenomenon_rates needs at least one record")
    per_note = [_phenomena(r) for r in records]
    out_idx = [i for i, r in enumerate(records) if r.setting == "outpatient"]
    in_idx = [i for i, r in enumerate(records) if r.setting == "inpatient"]

    def share(flag: str, idx: Iterable[int]) -> float:
        idx = list(idx)
        return sum(flag in per_note[i] for i in idx) / len(idx) if idx else 0.0

    every = range(len(records))
    rates = {
        "inpatient": len(in_idx) / len(records),
        "negated": share("mention:negated", every),
        "family": share("mention:family", every),
        "historical": share("mention:historical", every),
        "hypothetical": share("mention:hypothetical", every),
        "uncertain_outpatient": share("mention:uncertain", out_idx),
        "uncertain_inpatient_coded": share("uncertain_coded", in_idx),
        "implied_by_values": share("value", every),
        "procedures_outpatient": share("procedure", out_idx),
        "misspelled": share("misspelled", every),
        "core_distractor": share("core_distractor", every),
        "single_mention": share("single_mention", every),
    }
    if lengths is None and tokenizer is not None:
        lengths = token_counts(records, tokenizer)
    if lengths is not None:
        if len(lengths) != len(records):
            raise ValueError(f"got {len(lengths)} lengths for {len(records)} records")
        rates["longer_than_512_tokens"] = sum(n > LONG_NOTE_TOKENS for n in lengths) / len(records)
    return rates


# Phenomena measured over one setting only; the rest are shares of all notes.
PHENOMENON_SETTING: dict[str, str] = {
    "uncertain_outpatient": "outpatient",
    "procedures_outpatient": "outpatient",
    "uncertain_inpatient_coded": "inpatient",
}


def phenomenon_tolerances(records: Sequence[NoteRecord]) -> dict[str, float]:
    """Allowed |rate - target| per phenomenon for these records (catalog.target_tolerance of its denominator)."""
    n_setting = Counter(r.setting for r in records)
    return {
        name: target_tolerance(
            target, n_setting[PHENOMENON_SETTING[name]] if name in PHENOMENON_SETTING else len(records)
        )
        for name, target in PHENOMENON_TARGETS.items()
    }


def code_frequencies(records: Sequence[NoteRecord]) -> list[tuple[str, str, int]]:
    """(system, code, number of notes) for every code, most frequent first, ties by code."""
    counts: Counter[tuple[str, str]] = Counter((c.system, c.code) for r in records for c in r.codes)
    return sorted(((s, c, n) for (s, c), n in counts.items()), key=lambda t: (-t[2], t[0], t[1]))


def em_distribution(records: Sequence[NoteRecord]) -> dict[str, int]:
    counts = Counter(c.code for r in records for c in r.codes if c.code in VISIT_EM_CODES and c.system == "CPT")
    return dict(sorted(counts.items()))


def length_summary(lengths: Sequence[int]) -> dict[str, float]:
    """Median, deciles, max and share over 512 of a list of token counts."""
    if not lengths:
        raise ValueError("length_summary needs at least one length")
    ordered = sorted(lengths)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 9
    return {
        "min": ordered[0],
        "p10": deciles[0],
        "median": statistics.median(ordered),
        "p90": deciles[-1],
        "max": ordered[-1],
        "share_over_512": sum(n > LONG_NOTE_TOKENS for n in ordered) / len(ordered),
    }


def corpus_summary(splits: dict[str, Sequence[NoteRecord]], tokenizer: Any = None) -> dict[str, Any]:
    """Everything the data card reports, as plain JSON-able values."""
    records = [r for split in splits.values() for r in split]
    summary: dict[str, Any] = {
        "notes": {name: len(split) for name, split in splits.items()},
        "patients": {name: len({r.patient_id for r in split}) for name, split in splits.items()},
        "settings": dict(sorted(Counter(r.setting for r in records).items())),
        "payers": dict(sorted(Counter(r.payer for r in records).items())),
        "phenomena": phenomenon_rates(records),
        "em_codes": em_distribution(records),
        "codes": [list(t) for t in code_frequencies(records)],
        "mentions": dict(sorted(Counter(m.status for r in records for m in r.mentions).items())),
    }
    if tokenizer is not None:
        lengths = token_counts(records, tokenizer)
        summary["phenomena"] = phenomenon_rates(records, lengths=lengths)
        summary["tokens"] = length_summary(lengths)
    return summary


def summary_markdown(summary: dict[str, Any], top_codes: int = 15) -> str:
    """The summary as Markdown tables, for the data card's generated block."""
    lines = ["| split | notes | patients |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {n} | {summary['patients'][name]} |" for name, n in summary["notes"].items()]
    lines += ["", "| setting | notes |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in summary["settings"].items()]
    lines += ["", "| phenomenon | share of notes | target |", "| --- | ---: | ---: |"]
    lines += [
        f"| {k} | {v:.3f} | {PHENOMENON_TARGETS.get(k, float('nan')):.2f} |" for k, v in summary["phenomena"].items()
    ]
    if "tokens" in summary:
        t = summary["tokens"]
        lines += [
            "",
            "| MiniLM tokens per note | min | p10 | median | p90 | max | share > 512 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| all notes | {t['min']} | {t['p10']:.0f} | {t['median']:.0f} | {t['p90']:.0f} | {t['max']} "
            f"| {t['share_over_512']:.3f} |",
        ]
    lines += ["", "| E/M code | notes |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in summary["em_codes"].items()]
    lines += ["", f"| most frequent codes (of {len(summary['codes'])}) | system | notes |", "| --- | --- | ---: |"]
    lines += [f"| {code} | {system} | {n} |" for system, code, n in summary["codes"][:top_codes]]
    return "\n".join(lines) + "\n"
