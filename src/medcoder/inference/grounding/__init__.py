"""Grounding: turning coder outputs into codes with evidence spans, checked against their context.

- `medcoder.inference.grounding.context`: `detect_context`, the ConText-style negated/family/historical/
  hypothetical/uncertain check, and `blocks_grounding` (pure Python, cheap to import);
- `medcoder.inference.grounding.evidence`: `ground_note`, one note's outputs -> NotePrediction;
- `medcoder.inference.predict`: `predict_notes`, a MedicalCoder over records (imports torch).
"""

from medcoder.inference.grounding.context import blocks_grounding, detect_context

__all__ = ["blocks_grounding", "detect_context"]
