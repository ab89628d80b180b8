"""Packaging a trained coder for serving: export, MLflow pyfunc, `medcoder predict`.

- `artifact`: `export_coder` writes a sealed, self-contained folder (merged encoder, heads, config,
  ICD-11 table, SHA-256 manifest); `load_exported` verifies and loads it (`ExportedCoder`).
- `mlflow_model`: the pyfunc class, `log_packaged_model` / `save_packaged_model`, and
  `export_and_log` (what the training job calls inside its run).
- `pyfunc_model`: the models-from-code file MLflow executes to build the pyfunc.
- `predict`: the `medcoder predict` subcommand (`cmd_predict`; arguments are declared in `medcoder.cli`).

Nothing is imported here, so `medcoder --help` does not pay for torch and MLflow.
"""
