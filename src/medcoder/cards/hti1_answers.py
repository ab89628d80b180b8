"""The card's answers to the 31 ONC HTI-1 source attributes (the list itself is in `hti1`).

Each answer is built from the same MLflow facts as the rest of the card. What no run can know
(the developer's contact details, funding, validity in a customer's local data, monitoring
schedules) comes from one YAML file the deploying organisation fills in (`configs/card/hti1.yaml`,
Markdown values); until then the attribute says "Not available" and the section lists it as open.
"""

from __future__ import annotations

from pathlib import Path

from medcoder.cards import hti1
from medcoder.cards.facts import ModelFacts
from medcoder.cards.markdown import NOT_AVAILABLE, code, esc, fmt_count, frame_table
from medcoder.cards.sections import (
    DATASET_DESCRIPTIONS,
    code_systems,
    dataset_name,
    inline_metrics,
    known_failure_modes,
    out_of_scope_uses,
)


def hti1_values(f: ModelFacts) -> dict[str, str | None]:
    """Markdown value of each HTI-1 attribute (None = not available), before `hti1.<key>` tag overrides."""
    run, ext = f.run, f.external
    dataset = dataset_name(run) or NOT_AVAILABLE
    subgroups = run.subgroup_tables()
    ext_subgroups = ext.subgroup_tables() if ext else {}
    core = ("micro_f1", "macro_f1", "map", "micro_precision", "micro_recall")
    values: dict[str, str | None] = {key: None for key in hti1.KEYS}
    values.update(
        {
            "output_value": "For each note: the proposed codes of "
            + code_systems(run)
            + " with a score in [0, 1] (a code is "
            f"proposed when its score is above {esc(run.params.get('threshold', NOT_AVAILABLE))}), the "
            "character spans of the note that support each code, whether each code is grounded in that "
            "evidence, the ICD-11 equivalent where a map exists, and whether the note needs coder review "
            "and why.",
            "output_type": "Classification (multi-label: which codes apply to the note), delivered as a recommendation "
            "to a human coder, with supporting evidence.",
            "intended_use": "Computer-assisted coding: proposing billing codes, with supporting evidence, "
            'for certified coders to validate before claim submission. See "Intended use and decision role".',
            "patient_population": f"Patients whose encounters are documented in English notes like the training data "
            f"({esc(dataset)}); the model reads no demographic field, so it is not limited to an age "
            "or sex group, but its quality is measured only on the populations in Training data.",
            "intended_users": "Certified medical coders, coding auditors and clinical documentation integrity "
            "specialists.",
            "decision_role": "Informs and augments the coder's code assignment; does not replace it. "
            "No role in clinical management.",
            "cautioned_use": "\n".join(
                f"- {item}" for item in out_of_scope_uses(f, run.params.get("labels.n_labels", NOT_AVAILABLE), dataset)
            ),
            "known_risks": "\n".join(
                f"- {line}"
                for line in [
                    f"Missed and wrong codes: test {inline_metrics(run, 'test', ('micro_recall', 'micro_precision'))}.",
                    "Coding negated, family-history, historical or hypothetical mentions: test "
                    f"{inline_metrics(run, 'test', ('distractor_false_positive_rate',))}.",
                    "Codes without supporting evidence: test "
                    f"{inline_metrics(run, 'test', ('ungrounded_code_rate',))}.",
                    "Scores that over- or under-state certainty: test "
                    f"{inline_metrics(run, 'test', ('expected_calibration_error',))}.",
                    *known_failure_modes(run),
                ]
            ),
            "training_criteria": f"Notes of the {esc(dataset)} training split "
            f"({fmt_count(run.params.get('dataset.train.notes'))} notes). Label space: the "
            f"{esc(run.params.get('labels.top_k', NOT_AVAILABLE))} most frequent training codes of "
            f"{code_systems(run)} ({esc(run.params.get('labels.n_labels', NOT_AVAILABLE))} codes); codes "
            "outside it are never proposed. Dataset-level inclusion and exclusion criteria are in the "
            "dataset's data card (see Training data).",
            "demographic_inputs": "None of " + ", ".join(hti1.DEMOGRAPHIC_VARIABLES) + " is an input feature. The "
            "inputs are the note text and the encounter setting (inpatient or outpatient, used only "
            "to apply the coding guideline on uncertain diagnoses). The note text can mention such "
            "variables in free text.",
            "training_relevance": f"Training data: {DATASET_DESCRIPTIONS[dataset]}"
            if dataset in DATASET_DESCRIPTIONS
            else None,
            "fairness_approach": "Performance is reported per code, by how often a code occurs in training and by note "
            "length, so weak groups of codes and notes are visible rather than averaged away"
            + (
                f"; subgroup tables: {', '.join(esc(g) for g in subgroups)}."
                if subgroups
                else "; no demographic subgroup table was logged for this run."
            ),
            "bias_management": "Rare codes are reported separately (F1 by training frequency). Mentions the ICD-10-CM "
            "Official Guidelines say not to code as current (negated, family history, historical, "
            "hypothetical; uncertain diagnoses in outpatient notes) cannot ground a code, and coding them "
            "is measured (distractor false-positive rate). Ungrounded codes are routed to coder review, "
            "and a certified coder validates every code.",
            "validity_test": f"Held-out test split of {esc(dataset)} "
            f"({fmt_count(run.params.get('dataset.test.notes'))} notes): {inline_metrics(run, 'test', core)}. "
            "Full tables under Performance.",
            "fairness_test": "\n\n".join(f"By {esc(g)}:\n\n{frame_table(t)}" for g, t in subgroups.items()) or None,
            "validity_monitoring": "Process: each candidate version is scored with the same metrics code on the "
            "held-out and external test sets and replaces the champion only through a recorded promotion "
            "decision (this version: "
            f"{esc(f.version_tags.get('promotion.decision', 'no decision recorded'))}). No monitoring "
            "frequency is set for this model.",
            "update_process": "Candidate versions are registered as challenger, compared with the champion and "
            f"promoted by an alias move recorded in the alias history (alias changes "
            f"recorded so far: {len(f.alias_history)}). No update frequency is set for this model.",
        }
    )
    if ext is not None:
        values.update(
            {
                "external_data": f"Dataset {esc(ext.tags.get('dataset', NOT_AVAILABLE))}, run {code(ext.run_id)}: "
                f"{DATASET_DESCRIPTIONS.get(ext.tags.get('dataset', ''), '')}".strip(),
                "external_party": f"The model developer, with the medcoder platform (run by "
                f"{esc(ext.tags.get('mlflow.user', NOT_AVAILABLE))}); not an independent party.",
                "external_process": f"Run {code(ext.run_id)} ({esc(f.external_selection)}) logged test metrics "
                "computed with the platform's metrics code on the external test split "
                f"({fmt_count(ext.params.get('dataset.test.notes'))} notes) at threshold "
                f"{esc(ext.params.get('threshold', NOT_AVAILABLE))}.",
                "validity_external": f"Run {code(ext.run_id)}: {inline_metrics(ext, 'test', core)}.",
                "fairness_external": "\n\n".join(f"By {esc(g)}:\n\n{frame_table(t)}" for g, t in ext_subgroups.items())
                or None,
            }
        )
    return values


DEPLOYER_FILE = "card/hti1.yaml"  # under the config folder (medcoder.paths.config_dir)


def deployer_answers(path: str | Path | None = None) -> dict[str, str]:
    """The organisation's answers (`configs/card/hti1.yaml` by default): key -> non-empty Markdown. An unknown
    key or a value that is not text is an error naming the file and the key."""
    import yaml

    from medcoder.paths import config_dir

    source = Path(path) if path is not None else Path(config_dir()) / DEPLOYER_FILE
    if not source.exists():
        if path is not None:
            raise FileNotFoundError(f"{source}: no such HTI-1 answers file")
        return {}
    data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of HTI-1 attribute keys to answers")
    out = {}
    for key, value in data.items():
        if key not in hti1.KEYS:
            raise ValueError(f"{source}: key {key!r} is not an HTI-1 source attribute (see medcoder.cards.hti1)")
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{source}: key {key!r}: the answer must be text")
        if value and value.strip():
            out[key] = value.strip()
    return out


def hti1_section(f: ModelFacts, answers: dict[str, str] | None = None) -> str:
    """Every attribute under its rule number and exact name, grouped as in the rule; never omitted. `answers` are
    the organisation's (`deployer_answers`); the attributes still open are listed first."""
    values = {**hti1_values(f), **(answers or {})}
    still_open = [a.key for a in hti1.SOURCE_ATTRIBUTES if not values.get(a.key)]
    parts = [
        "## ONC HTI-1 source attributes",
        f"The {len(hti1.SOURCE_ATTRIBUTES)} source attributes of a predictive decision support intervention "
        f"({hti1.CITATION}), in the rule's order. What the model's runs cannot know, the deploying organisation "
        f"answers in `configs/card/{Path(DEPLOYER_FILE).name}`. Still open: "
        + (", ".join(code(k) for k in still_open) if still_open else "none")
        + ".",
    ]
    group = None
    for attribute in hti1.SOURCE_ATTRIBUTES:
        if attribute.group != group:
            group = attribute.group
            parts.append(f"### ({attribute.group_number}) {group}")
        parts.append(f"#### ({attribute.group_number})({attribute.item}) {attribute.name}")
        value = values.get(attribute.key)
        parts.append(value if value else f"{NOT_AVAILABLE} (open: `{attribute.key}` in configs/card/hti1.yaml)")
    return "\n\n".join(parts)
