"""Documents generated for review from recorded facts, never typed by hand.

- `model_card`: `medcoder card`, the model card of one registered model version (Markdown + HTML),
  built from `facts` (read from MLflow) by `sections`, `hti1_answers` and `markdown`.
- `hti1`: the 31 ONC HTI-1 predictive-DSI source attributes, as data.
- `alias_history`: the audit trail of alias moves (`champion`, `challenger`) kept in the registry.
- `data_cards`: the generated statistics blocks of `data_cards/*.md`.
"""
