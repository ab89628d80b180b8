"""The model registry operations: register a run's packaged model, gate it, promote it.

- `register`: `medcoder register`, a run's packaged model -> a tagged version with `@challenger`.
- `contract_eval`: score a registry version through the prediction contract on a pinned set.
- `gates`: the promotion gates (`configs/registry/default.yaml`) and their decision.
- `promote`: `medcoder promote`, `@challenger` -> `@champion` only when the gates pass.
- `client`: the MLflow client, alias names and version look-ups they share.

Nothing is imported here, so `medcoder --help` does not pay for MLflow.
"""
