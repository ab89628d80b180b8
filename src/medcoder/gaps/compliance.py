"""One check per property of a compliant physician query (docs/GAPS.md, "Query policy").

Each check reads a drafted `Query` and the texts of the notes it cites, and returns what is wrong (an empty
list when the property holds), so a report can say which property failed and why. The checks do not trust
the drafting code: quotes are compared with the notes, option codes with the values' own bands (a BMI class,
a CKD stage), and the words of the query with lists of leading and financial phrasings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from medcoder.gaps.queries import (
    DIAGNOSIS,
    MULTIPLE_CHOICE,
    NO,
    NOT_SIGNIFICANT,
    OTHER,
    UNDETERMINED,
    YES,
    YES_NO,
    Query,
)
from medcoder.gaps.rules import RULES_BY_ID

# directing the provider to one answer, or stating the conclusion for them
_LEADING = re.compile(
    r"\bplease\s+(?:document|add|code|consider)\b|\bshould\s+be\s+(?:documented|coded|added)\b"
    r"|\bconsider\s+(?:documenting|adding|coding)\b|\bmeets?\s+(?:the\s+)?criteria\s+for\b|\bconsistent\s+with\b"
    r"|\bsupports?\s+(?:a|the)\s+diagnosis\b|\brecommend(?:ed|s)?\b|\bmost\s+likely\b|\bwe\s+suggest\b"
    r"|\bindicative\s+of\b|\[x\]",
    re.IGNORECASE,
)
# money and risk adjustment: what a query must never mention
_FINANCIAL = re.compile(
    r"\bpay(?:ment|s|ing|er)?\b|\breimburs\w*|\brevenue\b|\bHCCs?\b|\bhierarchical\s+condition|\brisk\s+scores?\b"
    r"|\brisk\s+adjust\w*|\bRAF\b|\bDRGs?\b|\bcase\s+mix\b|\bdollars?\b|\$|\bmoney\b|\bfinancial\w*|\bbilling\b"
    r"|\bprofit\w*|\bincome\b",
    re.IGNORECASE,
)
# codes each value band contradicts: the checks' own reading of the thresholds (CDC classes, KDIGO stages)
_BMI_CLASS_CODES = {"E66.811": (30, 35), "E66.812": (35, 40), "E66.813": (40, 1000), "E66.01": (40, 1000),
                    "E66.09": (30, 40)}  # fmt: skip
_CKD_STAGE_CODES = {"N18.31": (45, 60), "N18.32": (30, 45), "N18.4": (15, 30), "N18.5": (0, 15)}
_VALUE = re.compile(r"\s(\d+(?:\.\d+)?)")  # "BMI 41.2 kg/m2" -> 41.2, "HbA1c 7.1%" -> 7.1
_QUOTED = re.compile(r'"[^"\n]*"')


def cites_clinical_indicators(query: Query, texts: Mapping[str, str]) -> list[str]:
    """The query cites at least one indicator, each quoting the note's words at its offsets, with its value and
    date in the text."""
    if not query.indicators:
        return ["cites no clinical indicator"]
    problems = []
    for i in query.indicators:
        if texts.get(i.note_id, "")[i.start : i.end] != i.quote or not i.quote:
            problems.append(f"indicator {i.start}-{i.end} of note {i.note_id} does not quote the note")
        if f'"{i.quote}"' not in query.text or i.value not in query.text:
            problems.append(f"indicator {i.start}-{i.end} of note {i.note_id} is not in the query's text")
        if i.date is not None and i.date not in query.text:
            problems.append(f"the date of indicator {i.start}-{i.end} is not in the query's text")
    return problems


def _has_option(query: Query, kind: str, label: str) -> list[str]:
    found = [o for o in query.options if o.kind == kind and o.label.lower().startswith(label.lower())]
    return [] if found and f"[ ] {found[0].label}" in query.text else [f"offers no '{label}' option"]


def offers_other(query: Query, texts: Mapping[str, str]) -> list[str]:
    """An "Other" option, so the provider can give a diagnosis the options do not list."""
    return _has_option(query, OTHER, "Other")


def offers_clinically_undetermined(query: Query, texts: Mapping[str, str]) -> list[str]:
    """A "Clinically undetermined" option, so the provider is never pushed to a diagnosis."""
    return _has_option(query, UNDETERMINED, "Clinically undetermined")


def _question(query: Query) -> str:
    """The query's words outside its option lines."""
    return "\n".join(line for line in query.text.splitlines() if not line.startswith("[ ]"))


def does_not_lead(query: Query, texts: Mapping[str, str]) -> list[str]:
    """No directing words; a multiple-choice query offers at least two clinically reasonable answers and its
    question names none of them (the options do)."""
    unquoted = _QUOTED.sub("", query.text)  # the note's own words may say anything; the query's may not lead
    problems = [f"leading wording ({m.group(0).lower()!r})" for m in _LEADING.finditer(unquoted)]
    if query.format == MULTIPLE_CHOICE:
        answers = [o for o in query.options if o.kind in (DIAGNOSIS, NOT_SIGNIFICANT)]
        if len(answers) < 2:
            problems.append(f"{len(answers)} clinically reasonable option(s): a single choice leads")
        question = _question(query).lower()
        problems += [f"the question names the option '{o.label}'" for o in answers if o.label.lower() in question]
        if RULES_BY_ID[query.rule].family.mention.search(_QUOTED.sub("", question)):
            problems.append("the question names the diagnosis outside the quoted indicators")
    return problems


def _cited_values(query: Query) -> list[float]:
    return [float(m.group(1)) for m in (_VALUE.search(i.value) for i in query.indicators) if m]


def names_only_supported_diagnoses(query: Query, texts: Mapping[str, str]) -> list[str]:
    """Every option's diagnosis belongs to the rule's condition or its differential, and a banded one (BMI
    class, CKD stage) fits a cited value; prediabetes never beside a diabetic-range value, overweight never
    beside a BMI of 30 or more, an early CKD stage never beside an eGFR under 60."""
    rule = RULES_BY_ID[query.rule]
    allowed = {
        "obesity_bmi": ("E66.8", "E66.0", "E66.9"),
        "diabetes_a1c": ("E10", "E11", "E13", "R73.09"),
        "diabetes_fasting_glucose": ("E10", "E11", "E13", "R73.09"),
        "ckd_egfr": ("N18.3", "N18.4", "N18.5", "N18.9", "R94.4"),
        "copd_spirometry": ("J44", "J43", "J45", "R94.2"),
    }[rule.id]
    values = _cited_values(query)
    problems = []
    for option in query.options:
        if option.code is None:
            continue
        if not option.code.startswith(allowed):
            problems.append(f"option '{option.label}' names a diagnosis the indicators do not support")
            continue
        band = _BMI_CLASS_CODES.get(option.code) or _CKD_STAGE_CODES.get(option.code)
        if band is not None and not any(band[0] <= v < band[1] for v in values):
            problems.append(f"option '{option.label}' does not fit the cited values")
    return problems


def mentions_no_payment(query: Query, texts: Mapping[str, str]) -> list[str]:
    """No word of payment, reimbursement, HCCs, risk scores, RAF or revenue, in the text or an option."""
    words = [query.text, *(o.label for o in query.options)]
    return sorted({f"financial wording ({m.group(0)!r})" for w in words for m in _FINANCIAL.finditer(w)})


def yes_no_only_to_confirm(query: Query, texts: Mapping[str, str]) -> list[str]:
    """A yes/no query only confirms a condition the record documents: it quotes that documentation, which
    states the rule's condition; a multiple-choice query is never a bare yes/no."""
    kinds = {o.kind for o in query.options}
    if query.format != YES_NO:
        return ["a multiple-choice query offers yes/no answers"] if kinds & {YES, NO} else []
    c = query.confirms
    if c is None:
        return ["a yes/no query confirms no documented condition"]
    quoted = texts.get(c.note_id, "")[c.start : c.end]
    if quoted != c.quote or not RULES_BY_ID[query.rule].family.mention.fullmatch(quoted):
        return ["the yes/no query's documentation does not state the condition in the cited note"]
    return [] if f'"{c.quote}"' in query.text else ["the yes/no query does not quote the documentation"]


Check = Callable[[Query, Mapping[str, str]], list[str]]
CHECKS: tuple[tuple[str, Check], ...] = (
    ("cites_clinical_indicators", cites_clinical_indicators),
    ("offers_other", offers_other),
    ("offers_clinically_undetermined", offers_clinically_undetermined),
    ("does_not_lead", does_not_lead),
    ("names_only_supported_diagnoses", names_only_supported_diagnoses),
    ("mentions_no_payment", mentions_no_payment),
    ("yes_no_only_to_confirm", yes_no_only_to_confirm),
)


def check_query(query: Query, texts: Mapping[str, str]) -> dict[str, list[str]]:
    """Each property's problems (empty: it holds)."""
    return {name: check(query, texts) for name, check in CHECKS}
