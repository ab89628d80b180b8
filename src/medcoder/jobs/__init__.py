"""The Hydra jobs users run: `medcoder-train` (`train`) and `medcoder-eval` (`eval`), and what they
share before composing a config (`config`: config folder, resolvers, the embedded corpus)."""
