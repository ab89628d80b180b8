"""Care gaps: documented values that meet a diagnostic threshold with no matching diagnosis (docs/GAPS.md).

- `measurements`: the values a note documents (BMI, HbA1c, eGFR, FEV1/FVC, fasting glucose), each with its
  offsets and date, only when measured and current (not a goal, not negated, family or hypothetical);
- `diagnoses`: whether a diagnosis family is documented: coded, or a current, affirmed mention in the text;
- `rules`: the rule table (thresholds and their published sources) and detection, note by note and, for the
  rules that need two results over time, across the notes of one patient;
- `queries`, `compliance`: a compliant physician query per gap, and one check per compliant-query property;
- `trail`: queries and answers in the audit trail; an answered query as a coder-correction record;
- `notes`: the input notes (prediction input or data contract) and the codes to read from them.
"""
