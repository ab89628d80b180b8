"""When a BMI code (Z68) may be reported: the ICD-10-CM rules, one place for every layer that reads them.

ICD-10-CM Official Guidelines FY2026, I.C.21.c.3 (category Z68): "BMI codes should only be assigned when
there is an associated, reportable diagnosis (such as obesity or anorexia) documented by the patient's
provider. Do not assign BMI codes during pregnancy." I.B.14: the BMI itself may come from another clinician
(a dietitian), the associated diagnosis must come from the provider. The Z68 tabular notes give the age bands:
adult codes (Z68.1-Z68.45) for persons 20 and older, pediatric percentiles (Z68.51-Z68.54) for ages 2-19.

Two readers: the guideline layer removes such a code from a prediction
(`inference.guidelines.bmi_needs_weight_diagnosis`), and risk adjustment keeps it out of a score
(`risk.rules`): CMS-HCC maps Z68.41-Z68.45 to the morbid-obesity HCC on their own, so a BMI the guidelines
do not allow would otherwise raise a risk score.
"""

from __future__ import annotations

from collections.abc import Iterable

BMI_CATEGORY = "Z68"
PEDIATRIC_BMI = "Z68.5"  # Z68.51-Z68.54, percentiles for ages 2-19; every other Z68 code is an adult band
ADULT_MIN_AGE = 20
PEDIATRIC_AGES = (2, 19)
# The associated weight diagnoses: overweight and obesity (E66), malnutrition (E40-E46), anorexia (R63.0, and
# anorexia nervosa F50.0-), abnormal weight loss, gain and underweight (R63.4-R63.6), cachexia (R64), and a
# child's lack of expected development such as failure to thrive (R62.5-).
WEIGHT_DIAGNOSES = ("E40", "E41", "E42", "E43", "E44", "E45", "E46", "E66", "F50.0",
                    "R62.5", "R63.0", "R63.4", "R63.5", "R63.6", "R64")  # fmt: skip
# Pregnancy: any chapter 15 code (O00-O9A), weeks of gestation (Z3A), pregnant state (Z33.1).
PREGNANCY_CODES = ("O", "Z3A", "Z33.1")


def is_bmi(code: str) -> bool:
    return code.startswith(BMI_CATEGORY)


def has_weight_diagnosis(codes: Iterable[str]) -> bool:
    """Whether `codes` hold a diagnosis a BMI code may go with (I.C.21.c.3)."""
    return any(code.startswith(WEIGHT_DIAGNOSES) for code in codes)


def indicates_pregnancy(codes: Iterable[str]) -> bool:
    """Whether `codes` say the patient is pregnant (no BMI code then, I.C.21.c.3)."""
    return any(code.startswith(PREGNANCY_CODES) for code in codes)


def in_age_band(code: str, age: int | None) -> bool:
    """Whether the BMI code's band fits the age (Z68 tabular notes); an unknown age cannot rule it out."""
    if age is None:
        return True
    if code.startswith(PEDIATRIC_BMI):
        return PEDIATRIC_AGES[0] <= age <= PEDIATRIC_AGES[1]
    return age >= ADULT_MIN_AGE
