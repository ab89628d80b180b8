"""The review's work: encounters to review, decisions, attestation, and the claim lines they release.

The audit trail is the only state: an encounter's codes are what the model suggested (its prediction line)
changed by the decisions recorded since (reject removes, modify replaces, add adds, accept confirms, modifier
sets a procedure line's CPT/HCPCS modifiers: an audit `modify` of the code into itself); it is released when an
`attest` entry follows a decision on every suggested code. Each decision that changes a code
is also appended to the corrections file in the denial-feedback contract (claims.corrections.Correction).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from medcoder.audit.entry import AuditEntry, EvidenceRef, sets_line_modifiers, text_sha256
from medcoder.audit.store import AuditLog
from medcoder.claims.corrections import Correction
from medcoder.claims.submission import Claim, ClaimLine
from medcoder.codes.formats import CPT, HCPCS, ICD10CM
from medcoder.inference.inputs import InputError, read_input_lines

DECISIONS: tuple[str, ...] = ("accept", "reject", "modify", "add", "modifier")
_AUDIT_ACTION = {"accept": "accept", "reject": "reject", "modify": "modify", "add": "add", "modifier": "modify"}
_VERDICT = {"accept": "accepted", "reject": "rejected", "modify": "replaced", "add": "added", "modifier": "modified"}
ATTESTATION = (
    "I attest that I reviewed the documentation of this encounter and that the codes released are supported by it."
)


@dataclass(frozen=True)
class Encounter:
    """A note and the prediction line the model wrote for it."""

    note_id: str
    text: str
    setting: str | None
    prediction: dict[str, Any]
    payer: str | None = None  # what a released claim is billed to, and when (prediction-contract input fields)
    encounter_date: str | None = None

    @property
    def suggested(self) -> list[tuple[str, str]]:
        """(system, code) of every code the model suggested, the E/M level included."""
        em = self.prediction.get("em")
        return [(c["system"], c["code"]) for c in self.prediction.get("codes", [])] + (
            [("CPT", em["code"])] if em else []
        )

    @property
    def reasons(self) -> list[str]:
        return list(self.prediction.get("review", {}).get("reasons", []))


def load_encounters(notes_path: Path, predictions_path: Path) -> dict[str, Encounter]:
    """The notes (prediction-contract input) joined to their prediction lines by id; a prediction without its
    note, or an error line, is an error naming the file and line."""
    notes = {}
    for item in read_input_lines(notes_path, max_chars=10**7):
        if isinstance(item, InputError):
            raise ValueError(f"{notes_path}:{item.line}: {item.kind}: {item.message}")
        notes[item.id] = item
    out = {}
    with predictions_path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = json.loads(raw)
            if "error" in line or line.get("id") not in notes:
                raise ValueError(
                    f"{predictions_path}:{number}: no note with id of this prediction line in {notes_path}"
                )
            note = notes[line["id"]]
            out[note.id] = Encounter(note.id, note.text, note.setting, line, note.payer, note.encounter_date)
    return out


def _history(log: AuditLog, note_id: str) -> list[dict[str, Any]]:
    return log.rows(note_id=note_id, actions=(*set(_AUDIT_ACTION.values()), "attest"))


def _codes_after(encounter: Encounter, history: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    codes = {label: "suggested" for label in encounter.suggested}
    for row in history:
        label = (row["code_system"], row["code"])
        if row["action"] == "reject":
            codes[label] = "rejected"
        elif row["action"] == "accept":
            codes[label] = "accepted"
        elif row["action"] == "add":
            codes[label] = "added"
        elif sets_line_modifiers(row):
            codes[label] = "modified"
        elif row["action"] == "modify":
            replaced = (row["code_system"], row["replaces"])
            codes[replaced] = "rejected"
            codes[label] = "replaced"
    return [(system, code, status) for (system, code), status in codes.items()]


def _modifiers_after(history: Sequence[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, ...]]:
    # in chain order, so the last decision per code wins
    return {(row["code_system"], row["code"]): tuple(json.loads(row["modifiers"] or "[]"))
            for row in history if sets_line_modifiers(row)}  # fmt: skip


def _attestation_in(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    return history[-1] if history and history[-1]["action"] == "attest" else None


def current_codes(log: AuditLog, encounter: Encounter) -> list[tuple[str, str, str]]:
    """(system, code, status) after the decisions so far: status suggested, accepted, replaced, added, modified or
    rejected (rejected codes listed so the page shows them; never released)."""
    return _codes_after(encounter, _history(log, encounter.note_id))


def line_modifiers(log: AuditLog, encounter: Encounter) -> dict[tuple[str, str], tuple[str, ...]]:
    """(system, code) -> the modifiers its line carries: the last set by a `modifier` decision (none otherwise)."""
    return _modifiers_after(_history(log, encounter.note_id))


def attestation(log: AuditLog, encounter: Encounter) -> dict[str, Any] | None:
    """The `attest` entry that releases the encounter: the last entry of its history, if it is one."""
    return _attestation_in(_history(log, encounter.note_id))


def _entry(encounter: Encounter, user: str, role: str, action: str, **fields: Any) -> AuditEntry:
    model = encounter.prediction.get("model", {})
    return AuditEntry(actor=user, role=role, action=action, encounter_id=encounter.note_id, note_id=encounter.note_id,
                      note_sha256=text_sha256(encounter.text), setting=encounter.setting,
                      model_name=model.get("name"), model_version=str(model.get("version")), **fields)  # fmt: skip


def decide(
    log: AuditLog, corrections: Path, encounter: Encounter, user: str, role: str, action: str, system: str,
    code: str, reason: str, new_code: str | None = None, evidence: tuple[int, int] | None = None,
    modifiers: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Record one decision: an audit entry, and for a change a correction record (checked against the contract
    before anything is written). `modify` replaces `code` with `new_code`; `modifier` sets the `modifiers` of
    the line of `code` (a CPT or HCPCS code: 25, 59, XS, LT...)."""
    if action not in DECISIONS:
        raise ValueError(f"decision {action!r} is not one of {', '.join(DECISIONS)}")
    if not reason.strip():
        raise ValueError("a decision needs a reason")
    if attestation(log, encounter) is not None:
        raise ValueError(f"encounter {encounter.note_id} is attested and released: its codes no longer change")
    suggested = {c for _, c, status in current_codes(log, encounter) if status != "rejected"}
    if action in ("accept", "reject", "modify", "modifier") and code not in suggested:
        raise ValueError(f"{code} is not among the codes of encounter {encounter.note_id}")
    coded = new_code if action == "modify" else code
    if action == "modify" and not new_code:
        raise ValueError("modify needs the replacing code")
    correction = None
    if action != "accept":
        kind = {"reject": "delete", "modify": "replace", "add": "add", "modifier": "modifier"}[action]
        record = {"encounter_id": encounter.note_id, "note_id": encounter.note_id,
                  "model_version": str(encounter.prediction.get("model", {}).get("version")), "system": system,
                  "code": coded, "action": kind, "reason": reason, "coder_id": user,
                  "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
        if action == "modify":
            record["replaced_code"] = code
        if action == "modifier":
            record["modifiers"] = list(modifiers)
        if evidence is not None:
            record["evidence"] = {"start": evidence[0], "end": evidence[1]}
        correction = Correction.model_validate(record)  # a code that does not exist is refused here
        coded = record["code"] = correction.code  # in canonical form, as the contract reads it
        if correction.replaced_code is not None:
            record["replaced_code"] = correction.replaced_code
        modifiers = correction.modifiers
    refs = (
        (EvidenceRef(evidence[0], evidence[1], text_sha256(encounter.text[evidence[0] : evidence[1]])),)
        if evidence
        else ()
    )
    log.append(_entry(encounter, user, role, _AUDIT_ACTION[action], code_system=system, code=coded, evidence=refs,
                      reason=reason, replaces=code if action in ("modify", "modifier") else None,
                      modifiers=modifiers if action == "modifier" else (), decision=_VERDICT[action]))  # fmt: skip
    if correction is not None:
        with corrections.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")  # the record as checked, in the contract's own JSON


def attest(log: AuditLog, encounter: Encounter, user: str, role: str, statement: str = ATTESTATION) -> dict[str, Any]:
    """Release the encounter's claim: refused while a suggested code is undecided."""
    undecided = [code for _, code, status in current_codes(log, encounter) if status == "suggested"]
    if undecided:
        raise ValueError(f"encounter {encounter.note_id}: decide {', '.join(undecided)} before attesting")
    return log.append(_entry(encounter, user, role, "attest", attestation=statement, decision="released"))[0]


@dataclass(frozen=True)
class ReleasedCode:
    """A code of an attested encounter that reaches the claim, with its line modifiers."""

    system: str
    code: str
    status: str
    modifiers: tuple[str, ...] = ()


def released(
    log: AuditLog, encounters: Sequence[Encounter]
) -> Iterator[tuple[Encounter, dict[str, Any], list[ReleasedCode]]]:
    """(encounter, its attestation entry, its codes other than rejected ones) for every attested encounter: what
    the CSV lines and the 837P claims are both made of."""
    for encounter in encounters:
        history = _history(log, encounter.note_id)  # read once: attestation, codes and modifiers all come from it
        attested = _attestation_in(history)
        if attested is not None:
            modifiers = _modifiers_after(history)
            yield encounter, attested, [ReleasedCode(system, code, status, modifiers.get((system, code), ()))
                                        for system, code, status in _codes_after(encounter, history)
                                        if status != "rejected"]  # fmt: skip


def released_lines(log: AuditLog, encounters: Sequence[Encounter]) -> list[dict[str, Any]]:
    """One row per released code of every attested encounter, with the attestation's audit reference; a
    rejected code never appears."""
    return [{"encounter_id": encounter.note_id, "note_id": encounter.note_id, "system": c.system, "code": c.code,
             "modifiers": " ".join(c.modifiers), "status": c.status, "attested_by": attested["actor"],
             "attested_at": attested["recorded_at"], "audit_seq": attested["seq"],
             "audit_entry_hash": attested["entry_hash"]}
            for encounter, attested, codes in released(log, encounters) for c in codes]  # fmt: skip


def released_claims(
    log: AuditLog, encounters: Sequence[Encounter], charges: dict[str, Decimal]
) -> list[tuple[Claim, str]]:
    """(claim, its attestation note) for every attested encounter with a billed code: its released diagnoses and
    one line per released procedure, service or visit code, priced from the practice's `charges` (code -> amount;
    the platform knows no prices). An encounter without a payer or date of service, or a code without a
    charge, is an error naming it: a claim is never filed half-known."""
    out = []
    for encounter, attested, codes in released(log, encounters):
        diagnoses = tuple(c.code for c in codes if c.system == ICD10CM)
        billed = [c for c in codes if c.system in (CPT, HCPCS)]
        if not billed:
            continue
        if not encounter.payer or not encounter.encounter_date:
            raise ValueError(f"encounter {encounter.note_id}: a claim needs the note's payer and encounter_date")
        missing = [c.code for c in billed if c.code not in charges]
        if missing:
            raise ValueError(f"encounter {encounter.note_id}: no charge for {', '.join(missing)} in the charges file")
        date = encounter.encounter_date.replace("-", "")
        lines = tuple(ClaimLine(f"{encounter.note_id}-{k}", c.code, c.modifiers, Decimal(1), charges[c.code], date,
                                diagnoses[:4]) for k, c in enumerate(billed, 1))  # fmt: skip
        claim = Claim(encounter.note_id, encounter.payer, "outpatient", None, None, date, diagnoses, lines,
                      encounter_id=encounter.note_id)  # fmt: skip
        out.append((claim, f"ATTESTED {attested['actor']} AUDIT {attested['seq']} {attested['entry_hash'][:16]}"))
    return out
