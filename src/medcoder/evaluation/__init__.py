"""Everything that scores a coder, in one package.

- `split`: the protocol every model is scored by (threshold on val, test once) and its MLflow logging.
- `baseline`: the TF-IDF + logistic regression baseline run (`medcoder baseline`).
- `contract`: a registry version scored through the prediction contract on a pinned set (promotion).
- `behaviour`, `stress`: the held-out hand-written guideline cases and stress notes, scored through
  `medcoder predict` in a subprocess (`predict_subprocess`), as a user runs it.
- `records`: the generated experiment records in `experiments/` and their tables.

Nothing is imported here, so importing one part does not pay for the others.
"""
