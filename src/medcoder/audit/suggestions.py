"""`suggest` entries for a prediction served through the platform: one per code and one for the E/M level.

Built from the contract line (medcoder.inference.schema) and the note it coded, so that serving writes the
same record whatever model answered: which code, which model version and manifest, its score against the
threshold, the evidence as offsets and hashes of the quoted words, the rules that changed it, whether it is
grounded, and whether routing sent it to a coder (with the reasons that name it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medcoder.audit.entry import AuditEntry, EvidenceRef, text_sha256

MODEL_ACTOR = "medcoder"


def _evidence(note_text: str, spans: Any) -> tuple[EvidenceRef, ...]:
    return tuple(EvidenceRef(int(s["start"]), int(s["end"]), text_sha256(note_text[s["start"] : s["end"]]))
                 for s in spans or ())  # fmt: skip


def suggestion_entries(
    line: Mapping[str, Any],
    note_text: str,
    *,
    setting: str | None,
    threshold: float | None,
    manifest_sha256: str | None,
) -> list[AuditEntry]:
    """The `suggest` entries of one prediction line (none for an error entry)."""
    if "error" in line:
        return []
    model = line["model"]
    reasons = list(line.get("review", {}).get("reasons", []))
    common = {"actor": MODEL_ACTOR, "role": "model", "action": "suggest", "encounter_id": line["id"],
              "note_id": line["id"], "note_sha256": text_sha256(note_text), "setting": setting,
              "model_name": model.get("name"), "model_version": str(model.get("version")),
              "manifest_sha256": manifest_sha256, "threshold": threshold}  # fmt: skip

    def routed(code: str) -> list[str]:
        return [r for r in reasons if r.split(":", 1)[-1] == code]

    out = []
    for c in line.get("codes", []):
        why = routed(c["code"])
        out.append(AuditEntry(
            **common, code_system=c["system"], code_set_version=model.get("code_sets", {}).get(c["system"]),
            code=c["code"], score=float(c["score"]), evidence=_evidence(note_text, c.get("evidence")),
            rules=tuple(c.get("rules_applied", ())),
            context_flags=("grounded",) if c.get("grounded") else ("ungrounded",),
            decision="review" if why else "suggested", reason="; ".join(why) or None,
        ))  # fmt: skip
    em = line.get("em")
    if em:
        why = routed(em["code"])
        out.append(AuditEntry(
            **common, code_system="CPT", code_set_version=model.get("code_sets", {}).get("CPT"), code=em["code"],
            score=float(em["score"]), evidence=_evidence(note_text, em.get("evidence")),
            decision="review" if why else "suggested", reason="; ".join(why) or None,
        ))  # fmt: skip
    return out
