"""The source attributes of a Predictive Decision Support Intervention (ONC HTI-1 final rule).

45 CFR 170.315(b)(11)(iv)(B) lists 31 source attributes in 9 groups that a certified Health IT
Module must let users review for every predictive DSI it supplies (89 FR 1192, January 9, 2024).
(Paragraph (iv)(A) of the same section is the shorter list for evidence-based DSIs; the variables
"(b)(11)(iv)(A)(5)-(13)" that attribute (4)(ii) refers to are the demographic and social items
listed in `DEMOGRAPHIC_VARIABLES`.) medcoder is not certified health IT, but compliance teams and
buyers review model cards against this list, so the card answers every attribute, in the rule's
order and words, with its value or "Not available".

This module is the one place the list lives; `model_card` decides the values.
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = "45 CFR 170.315(b)(11)(iv)(B)"

# The variables of 170.315(b)(11)(iv)(A)(5)-(13), named by attributes (4)(ii), (4)(iii) and (6)(iii).
DEMOGRAPHIC_VARIABLES: tuple[str, ...] = (
    "race",
    "ethnicity",
    "language",
    "sexual orientation",
    "gender identity",
    "sex",
    "date of birth",
    "social determinants of health data",
    "health status assessments data",
)


@dataclass(frozen=True)
class SourceAttribute:
    """One attribute: where it sits in the rule, its exact name, and a key for overrides.

    `key` names the registry tag `hti1.<key>` through which an organisation supplies (or
    replaces) the value, e.g. the developer's contact details, which no run can know.
    """

    group_number: int
    group: str
    item: str  # lower-case roman numeral of the rule, e.g. "iii"
    key: str
    name: str

    @property
    def paragraph(self) -> str:
        """The paragraph of the rule, e.g. "(b)(11)(iv)(B)(7)(iii)"."""
        return f"(b)(11)(iv)(B)({self.group_number})({self.item})"


_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Details and output of the intervention",
        (
            ("developer", "Name and contact information for the intervention developer"),
            ("funding_source", "Funding source of the technical implementation for the intervention(s) development"),
            ("output_value", "Description of value that the intervention produces as an output"),
            (
                "output_type",
                "Whether the intervention output is a prediction, classification, recommendation, "
                "evaluation, analysis, or other type of output",
            ),
        ),
    ),
    (
        "Purpose of the intervention",
        (
            ("intended_use", "Intended use of the intervention"),
            ("patient_population", "Intended patient population(s) for the intervention's use"),
            ("intended_users", "Intended user(s)"),
            (
                "decision_role",
                "Intended decision-making role for which the intervention was designed to be used/for "
                "(e.g., informs, augments, replaces clinical management)",
            ),
        ),
    ),
    (
        "Cautioned out-of-scope use of the intervention",
        (
            (
                "cautioned_use",
                "Description of tasks, situations, or populations where a user is cautioned against "
                "applying the intervention",
            ),
            ("known_risks", "Known risks, inappropriate settings, inappropriate uses, or known limitations"),
        ),
    ),
    (
        "Intervention development details and input features",
        (
            ("training_criteria", "Exclusion and inclusion criteria that influenced the training data set"),
            ("demographic_inputs", "Use of variables in paragraph (b)(11)(iv)(A)(5)-(13) as input features"),
            (
                "demographic_representativeness",
                "Description of demographic representativeness according to variables in "
                "paragraph (b)(11)(iv)(A)(5)-(13) including, at a minimum, those used as "
                "input features in the intervention",
            ),
            ("training_relevance", "Description of relevance of training data to intended deployed setting"),
        ),
    ),
    (
        "Process used to ensure fairness in development of the intervention",
        (
            (
                "fairness_approach",
                "Description of the approach the intervention developer has taken to ensure that "
                "the intervention's output is fair",
            ),
            ("bias_management", "Description of approaches to manage, reduce, or eliminate bias"),
        ),
    ),
    (
        "External validation process",
        (
            (
                "external_data",
                "Description of the data source, clinical setting, or environment where an "
                "intervention's validity and fairness has been assessed, other than the source of "
                "training and testing data",
            ),
            ("external_party", "Party that conducted the external testing"),
            (
                "external_representativeness",
                "Description of demographic representativeness of external data according "
                "to variables in paragraph (b)(11)(iv)(A)(5)-(13) including, at a minimum, "
                "those used as input features in the intervention",
            ),
            ("external_process", "Description of external validation process"),
        ),
    ),
    (
        "Quantitative measures of performance",
        (
            (
                "validity_test",
                "Validity of intervention in test data derived from the same source as the initial training data",
            ),
            (
                "fairness_test",
                "Fairness of intervention in test data derived from the same source as the initial training data",
            ),
            (
                "validity_external",
                "Validity of intervention in data external to or from a different source than the "
                "initial training data",
            ),
            (
                "fairness_external",
                "Fairness of intervention in data external to or from a different source than the "
                "initial training data",
            ),
            (
                "outcome_references",
                "References to evaluation of use of the intervention on outcomes, including, "
                "bibliographic citations or hyperlinks to evaluations of how well the intervention "
                "reduced morbidity, mortality, length of stay, or other outcomes",
            ),
        ),
    ),
    (
        "Ongoing maintenance of intervention implementation and use",
        (
            (
                "validity_monitoring",
                "Description of process and frequency by which the intervention's validity is monitored over time",
            ),
            ("validity_local", "Validity of intervention in local data"),
            (
                "fairness_monitoring",
                "Description of the process and frequency by which the intervention's fairness is monitored over time",
            ),
            ("fairness_local", "Fairness of intervention in local data"),
        ),
    ),
    (
        "Update and continued validation or fairness assessment schedule",
        (
            ("update_process", "Description of process and frequency by which the intervention is updated"),
            (
                "correction_frequency",
                "Description of frequency by which the intervention's performance is corrected "
                "when risks related to validity and fairness are identified",
            ),
        ),
    ),
)

_ROMAN: tuple[str, ...] = ("i", "ii", "iii", "iv", "v")

SOURCE_ATTRIBUTES: tuple[SourceAttribute, ...] = tuple(
    SourceAttribute(group_number=g, group=group, item=_ROMAN[i], key=key, name=name)
    for g, (group, items) in enumerate(_GROUPS, start=1)
    for i, (key, name) in enumerate(items)
)
GROUPS: tuple[str, ...] = tuple(group for group, _ in _GROUPS)
KEYS: frozenset[str] = frozenset(a.key for a in SOURCE_ATTRIBUTES)
