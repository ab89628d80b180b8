"""Units of the corpus generator: offsets by construction, E/M levels, combination codes, split, stats."""

from __future__ import annotations

import random

import pytest
import simple_icd_10_cm as cm

from medcoder.data.schema import CodeAssignment, Mention, NoteRecord
from medcoder.data.synth import em, generate_notes
from medcoder.data.synth.builder import NoteBuilder, ev, fill, join, men
from medcoder.data.synth.catalog import (
    ALLERGIES,
    CHRONIC,
    FAMILY,
    HISTORY,
    SYMPTOMS,
    bmi_code,
    icd,
)
from medcoder.data.synth.coding import condition_codes
from medcoder.data.synth.split import split_by_patient
from medcoder.data.synth.stats import length_summary, phenomenon_rates


# ---------------------------------------------------------------- builder
def test_builder_records_exact_offsets_for_nested_and_repeated_phrases():
    b = NoteBuilder()
    htn = ev("HTN", icd("I10"))
    b.line(
        "PMH: ",
        htn,
        ", ",
        ev(fill("history of {dx}, no recurrence", dx=men("colon cancer", "C18.9", "historical")), icd("Z85.038")),
    )
    b.line("A/P: ", htn, " stable; ", fill("no {x}", x=men("chest pain", "R07.9", "negated")))
    text = b.text
    spans = {c.code: c.evidence for c in b.code_assignments()}
    assert [text[s:e] for s, e in spans["I10"]] == ["HTN", "HTN"]  # both copies, at their own offsets
    assert spans["I10"][0] != spans["I10"][1]
    assert [text[s:e] for s, e in spans["Z85.038"]] == ["history of colon cancer, no recurrence"]
    by_status = {m.status: text[m.start : m.end] for m in b.mentions}
    assert by_status == {"historical": "colon cancer", "negated": "chest pain"}
    ((z_start, z_end),) = spans["Z85.038"]
    hist = next(m for m in b.mentions if m.status == "historical")
    assert z_start < hist.start < hist.end < z_end


def test_fill_and_join_reject_bad_templates():
    with pytest.raises(KeyError, match="dx"):
        fill("history of {dx}")
    with pytest.raises(ValueError, match="format spec"):
        fill("{x:>5}", x="a")
    assert NoteBuilder().add(join(["a", "b", "c"], ", ", " and ")) == (0, len("a, b and c"))
    with pytest.raises(ValueError, match="empty"):
        NoteBuilder().add(ev("", icd("I10")))


# ---------------------------------------------------------------- E/M from MDM
@pytest.mark.parametrize(
    "mdm, new, expected",
    [
        (em.MDM(problems=[em.MINOR], risk=em.RISK_MINIMAL), False, "99212"),
        (em.MDM(problems=[em.MINOR], risk=em.RISK_MINIMAL), True, "99202"),
        (em.MDM(problems=[em.ACUTE_UNCOMPLICATED], risk=em.RISK_MODERATE), False, "99213"),  # low, none, moderate
        (em.MDM(problems=[em.STABLE_CHRONIC, em.STABLE_CHRONIC], risk=em.RISK_MODERATE), False, "99214"),
        (em.MDM(problems=[em.STABLE_CHRONIC, em.STABLE_CHRONIC], risk=em.RISK_MODERATE), True, "99204"),
        (em.MDM(problems=[em.STABLE_CHRONIC], tests=["A1c", "lipid panel", "CMP"], risk=em.RISK_LOW), False, "99213"),
        (em.MDM(problems=[em.THREAT], risk=em.RISK_HIGH), False, "99215"),
        (em.MDM(problems=[em.THREAT], risk=em.RISK_HIGH), True, "99205"),
        (em.MDM(problems=[em.THREAT], risk=em.RISK_LOW), False, "99213"),  # two of three elements decide
        (em.MDM(problems=[em.UNDIAGNOSED], tests=["CBC"], historian=True, risk=em.RISK_MINIMAL), False, "99213"),
    ],
)
def test_office_em_levels(mdm, new, expected):
    assert em.office_em_code(mdm, new) == expected


def test_mdm_element_levels():
    assert em.problem_level([em.MINOR, em.MINOR]) == 1
    assert em.problem_level([em.STABLE_CHRONIC]) == 1
    assert em.problem_level([em.STABLE_CHRONIC, em.CHRONIC_PROGRESSION]) == 2
    assert em.problem_level([em.CHRONIC_SEVERE]) == 3
    assert em.data_level(em.MDM(tests=["CBC"])) == 0
    assert em.data_level(em.MDM(tests=["CBC", "BMP"])) == 1
    assert em.data_level(em.MDM(historian=True)) == 1
    assert em.data_level(em.MDM(tests=["CBC", "BMP"], historian=True)) == 2  # historian counts in category 1
    assert em.data_level(em.MDM(interpretation=True)) == 2
    assert em.data_level(em.MDM(tests=["CBC", "BMP", "TSH"], discussion=True)) == 3


@pytest.mark.parametrize(
    "age, new, code",
    [
        (0, True, "99381"),
        (2, False, "99392"),
        (11, False, "99393"),
        (16, True, "99384"),
        (30, False, "99395"),
        (50, True, "99386"),
        (70, False, "99397"),
    ],
)
def test_preventive_codes_follow_age_and_status(age, new, code):
    assert em.preventive_em_code(age, new) == code


# ---------------------------------------------------------------- combination codes
def _codes(keys, **kw):
    return {k: [c for _, c in v] for k, v in condition_codes(keys, **kw).items()}


def test_combination_codes():
    assert _codes(["htn", "hfref"]) == {"htn": ["I11.0"], "hfref": ["I50.22", "I11.0"]}
    assert _codes(["htn", "ckd3", "t2dm"]) == {
        "htn": ["I12.9"],
        "ckd3": ["N18.30", "I12.9", "E11.22"],
        "t2dm": ["E11.22"],
    }
    assert _codes(["t2dm"]) == {"t2dm": ["E11.9"]}
    assert _codes(["t2dm"], hyperglycemia=True) == {"t2dm": ["E11.65"]}
    assert _codes(["t2dm", "ckd4"], hyperglycemia=True)["t2dm"] == ["E11.22", "E11.65"]
    assert _codes(["htn"]) == {"htn": ["I10"]}
    assert _codes(["htn", "hfref"], heart_failure_code="I50.23")["hfref"] == ["I50.23", "I11.0"]
    assert _codes(["copd"], copd_code="J44.0") == {"copd": ["J44.0"]}
    with pytest.raises(ValueError, match="I13.0"):
        condition_codes(["htn", "chf", "ckd3"])


def test_catalog_codes_are_billable_and_bmi_bands_match_their_descriptions():
    codes = {c.code for c in CHRONIC.values()} | {s.code for s in SYMPTOMS.values()}
    codes |= {h.code for h in HISTORY.values()} | {h.mention_code for h in HISTORY.values()}
    codes |= {f.code for f in FAMILY} | {f.mention_code for f in FAMILY}
    codes |= {z for _, z, _ in ALLERGIES if z} | {m.z_code for c in CHRONIC.values() for m in c.meds if m.z_code}
    for code in sorted(codes):
        assert cm.is_valid_item(code) and cm.is_leaf(code), code
    for bmi in (19.0, 24.3, 30.0, 30.9, 35.5, 39.9, 40.0, 44.9, 45.0, 52.0, 65.0, 71.0):
        description = cm.get_description(bmi_code(bmi))
        if "-" in description:  # "Body mass index [BMI] 35.0-35.9, adult"
            lo, hi = description.split("] ")[1].split(",")[0].split("-")
            assert float(lo) <= bmi <= float(hi) + 0.05, (bmi, description)


# ---------------------------------------------------------------- split
def _rec(i: int, pid: str) -> NoteRecord:
    return NoteRecord(id=f"n{i:03d}", text="x", patient_id=pid)


def test_split_keeps_patients_whole_and_is_deterministic():
    rng = random.Random(0)
    records = [_rec(i, f"p{rng.randrange(60):02d}") for i in range(400)]
    a, b = split_by_patient(records, seed=3), split_by_patient(records, seed=3)
    assert {k: [r.id for r in v] for k, v in a.items()} == {k: [r.id for r in v] for k, v in b.items()}
    owners = {}
    for name, split in a.items():
        for r in split:
            assert owners.setdefault(r.patient_id, name) == name
    assert sum(len(v) for v in a.values()) == 400
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_patient(records, seed=3, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="patient_id"):
        split_by_patient([NoteRecord(id="n1", text="x")], seed=1)


# ---------------------------------------------------------------- stats
def test_phenomenon_rates_read_the_records():
    def at(text: str, phrase: str) -> tuple[int, int]:
        start = text.index(phrase)
        return (start, start + len(phrase))

    text = "Dx: probable pneumonia. A1c 9.1%. Treated pnuemonia."
    inpatient = NoteRecord(
        id="a",
        text=text,
        setting="inpatient",
        codes=(
            CodeAssignment("ICD-10-CM", "J18.9", (at(text, "pneumonia"), at(text, "pnuemonia"))),
            CodeAssignment("ICD-10-CM", "E11.65", (at(text, "A1c 9.1%"),)),
        ),
    )
    text2 = "Cough, possible pneumonia; no fever."
    outpatient = NoteRecord(
        id="b",
        text=text2,
        setting="outpatient",
        codes=(
            CodeAssignment("ICD-10-CM", "R05.9", (at(text2, "Cough"),)),
            CodeAssignment("CPT", "93000", (at(text2, "Cough"),)),
        ),
        mentions=(
            Mention(*at(text2, "pneumonia"), "J18.9", "uncertain"),
            Mention(*at(text2, "fever"), "R50.9", "negated"),
        ),
    )
    rates = phenomenon_rates([inpatient, outpatient], lengths=[600, 100])
    assert rates["inpatient"] == 0.5
    assert rates["uncertain_inpatient_coded"] == 1.0 and rates["uncertain_outpatient"] == 1.0
    assert rates["implied_by_values"] == 0.5 and rates["misspelled"] == 0.5
    assert rates["negated"] == 0.5 and rates["procedures_outpatient"] == 1.0
    assert rates["longer_than_512_tokens"] == 0.5
    assert length_summary([100, 200, 600])["median"] == 200


def test_small_corpora_and_bad_sizes():
    notes = generate_notes(1, seed=9)
    assert len(notes) == 1 and notes[0].codes
    with pytest.raises(ValueError, match="at least 1"):
        generate_notes(0, seed=9)


def test_corpus_summary_and_markdown():
    from medcoder.data.synth import generate_corpus
    from medcoder.data.synth.stats import corpus_summary, summary_markdown

    corpus = generate_corpus(60, seed=4)
    summary = corpus_summary(corpus)
    assert sum(summary["notes"].values()) == 60
    assert sum(summary["settings"].values()) == 60
    # every full office note has one E/M code; brief notes (synth/brief.py) have none
    outpatient, with_em = summary["settings"]["outpatient"], sum(summary["em_codes"].values())
    assert 0.7 * outpatient <= with_em < outpatient
    text = summary_markdown(summary)
    assert "| train |" in text and "| negated |" in text and "tokens" not in text  # no tokenizer given


def test_every_code_the_corpus_emits_is_valid_output():
    """The packaged model only returns codes `medcoder.codes.is_valid_code` accepts, so a corpus code
    outside the code sets (e.g. a CPT code missing from the catalog) could be learned but never returned."""
    from medcoder.codes import is_valid_code
    from medcoder.data.synth import generate_corpus

    corpus = generate_corpus(600, seed=5)
    invalid = {
        (c.system, c.code)
        for split in corpus.values()
        for r in split
        for c in r.codes
        if not is_valid_code(c.system, c.code)
    }
    assert invalid == set()


def test_a_corpus_written_by_another_generator_version_is_stale_and_rewritten(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from medcoder.data.synth import STAMP, corpus_is_current, write_corpus
    from medcoder.jobs.config import ensure_embedded_corpus

    out = tmp_path / "corpus"
    assert not corpus_is_current(out, 30, 2)
    write_corpus(out, n_notes=30, seed=2)
    assert corpus_is_current(out, 30, 2) and not corpus_is_current(out, 31, 2)
    (out / STAMP).write_text('{"generator_version": 1, "notes": 30, "seed": 2}\n', encoding="utf-8")
    assert not corpus_is_current(out, 30, 2)  # an older generator wrote it
    (out / "train.jsonl").write_text("", encoding="utf-8")
    data, corpus = (
        OmegaConf.create({"dataset": "embedded", "data_dir": str(out)}),
        OmegaConf.create({"notes": 30, "seed": 2}),
    )
    ensure_embedded_corpus(data, corpus)
    assert corpus_is_current(out, 30, 2) and (out / "train.jsonl").stat().st_size > 0


def test_notes_the_generator_did_not_write_are_never_overwritten(tmp_path):
    from omegaconf import OmegaConf

    from medcoder.jobs.config import ensure_embedded_corpus

    out = tmp_path / "mine"
    out.mkdir()
    (out / "train.jsonl").write_text('{"id": "n1", "text": "my own note"}\n', encoding="utf-8")
    data = OmegaConf.create({"dataset": "embedded", "data_dir": str(out)})
    with pytest.raises(
        ValueError, match=r"holds train.jsonl that the embedded generator did not write.*corpus.generate=false"
    ):
        ensure_embedded_corpus(data, OmegaConf.create({"notes": 30, "seed": 2}))
    ensure_embedded_corpus(data, OmegaConf.create({"notes": 30, "seed": 2, "generate": False}))
    assert (out / "train.jsonl").read_text(encoding="utf-8") == '{"id": "n1", "text": "my own note"}\n'
    assert not (out / "val.jsonl").exists()
