"""Which codes each documented chronic condition supports, under the ICD-10-CM combination rules.

The Official Guidelines presume some links unless the provider says otherwise, and then a
combination code replaces the single ones:
- hypertension with heart failure -> I11.0 plus the I50.- code, never I10 (I.C.9.a.1);
- hypertension with CKD -> I12.9 plus the N18.- stage code, never I10 (I.C.9.a.2);
- diabetes with CKD -> E11.22 plus N18.- ("with" presumes the link, I.A.15), never E11.9;
- diabetes documented as uncontrolled / with hyperglycemia -> E11.65, and E11.9 only when no
  complication is coded;
- COPD with an acute lower respiratory infection (pneumonia, COVID-19 pneumonia) -> J44.0 plus the
  infection code, and COPD in an exacerbation -> J44.1, instead of J44.9.
The result maps each condition key to the codes its phrase is evidence for, so the phrase
"HTN" in a heart-failure patient points at I11.0, and "chronic HFrEF" at both I50.22 and I11.0.
Notes never combine HTN, heart failure and CKD (that would be I13.0; see catalog.EXCLUSIVE).
"""

from __future__ import annotations

from medcoder.data.synth.catalog import CHRONIC, icd

Code = tuple[str, str]

HEART_FAILURE = ("chf", "hfref")
CKD = ("ckd3", "ckd4")


def condition_codes(
    conditions: list[str],
    *,
    hyperglycemia: bool = False,
    heart_failure_code: str | None = None,
    copd_code: str | None = None,
) -> dict[str, tuple[Code, ...]]:
    """Codes each condition's phrase is evidence for, given all conditions documented together.

    `hyperglycemia`: the diabetes is documented as uncontrolled in this note (E11.65).
    `heart_failure_code`: overrides the chronic I50 code (e.g. I50.23 for an acute-on-chronic admission).
    `copd_code`: overrides J44.9 (J44.0 with a lower respiratory infection, J44.1 in an exacerbation).
    """
    has = set(conditions).__contains__
    hf = any(has(k) for k in HEART_FAILURE)
    ckd = any(has(k) for k in CKD)
    if hf and ckd and has("htn"):
        raise ValueError("HTN + heart failure + CKD (I13.0) is not generated; see catalog.EXCLUSIVE")
    out: dict[str, tuple[Code, ...]] = {}
    for key in conditions:
        codes: list[str]
        if key == "htn":
            codes = ["I11.0"] if hf else ["I12.9"] if ckd else ["I10"]
        elif key in HEART_FAILURE:
            codes = [heart_failure_code or CHRONIC[key].code] + (["I11.0"] if has("htn") else [])
        elif key in CKD:
            codes = [CHRONIC[key].code] + (["I12.9"] if has("htn") else []) + (["E11.22"] if has("t2dm") else [])
        elif key == "copd":
            codes = [copd_code or CHRONIC[key].code]
        elif key == "t2dm":
            codes = (["E11.22"] if ckd else []) + (["E11.65"] if hyperglycemia else [])
            codes = codes or ["E11.9"]
        else:
            codes = [CHRONIC[key].code]
        out[key] = tuple(icd(c) for c in codes)
    return out


def med_codes(z_code: str | None) -> tuple[Code, ...]:
    return (icd(z_code),) if z_code else ()
