"""Two sweep workers started at once on one SQLite study split its trials (issue 15, section 3).

Each worker is the user's command, `medcoder-train -m hparams_search=optuna_map` (the -m is the config's
`hydra.mode: MULTIRUN`: test_resume's launcher puts the overrides first, before where a flag could go), with the
tiny random BERT and a small corpus (tests/test_train.py's overrides, shorter fits), its own sampler seed and its own
MLflow store, and both name one Optuna storage (medcoder.jobs.sweep_storage). Afterwards the study, read through
Optuna's API, must hold both workers' trials: 2N completed, distinct parameter sets, and values that are the val/map
each trial's run logged.
"""

from __future__ import annotations

import mlflow
import optuna
import pytest
from test_resume import finish, start_train

from medcoder.data.synth import write_corpus
from medcoder.jobs.sweep_storage import initialise_schema, sqlite_file, study_storage

TRIALS_PER_WORKER = 1  # two workers, one trial each: enough to show they share the study; CI time is short
# shorter fits than TINY's: a trial only has to log a real val/map
FAST = [
    "trainer.max_epochs=1",
    "callbacks.head_warmup.epochs=1",
    "test=false",
    "threads=1",
]


def test_a_new_sqlite_study_initialises_and_records_trials(tmp_path) -> None:
    """optuna 2.10's own RDBStorage fails on a new file under SQLAlchemy 2 (module docstring); this one works."""
    url = f"sqlite:///{tmp_path / 'nested' / 'optuna.db'}"
    assert sqlite_file(url) == tmp_path / "nested" / "optuna.db"
    study = optuna.create_study(study_name="s", storage=study_storage(url), direction="maximize", load_if_exists=True)
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
    again = optuna.load_study(study_name="s", storage=study_storage(url))  # a second worker, schema already there
    assert [t.state for t in again.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    initialise_schema(url, {})  # idempotent: no second revision stamp
    assert sqlite_file("sqlite://") is None and sqlite_file("postgresql://u@h/db") is None


@pytest.mark.slow
def test_two_workers_started_together_share_one_study(tmp_path) -> None:
    write_corpus(tmp_path / "data", n_notes=160, seed=1)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    workers = [
        start_train(
            tmp_path / f"worker{seed}",
            [
                "hparams_search=optuna_map",  # its hydra.mode MULTIRUN is what -m sets
                f"hydra.sweeper.storage.url={url}",
                f"hydra.sweeper.sampler.seed={seed}",
                f"hydra.sweeper.n_trials={TRIALS_PER_WORKER}",
                f"data.data_dir={tmp_path / 'data'}",
                *FAST,
            ],
            "sweep.log",
        )
        for seed in (1, 2)
    ]
    for process, log in workers:
        status, text = finish(process, log)
        assert status == 0, text[-3000:]

    study = optuna.load_study(study_name="medcoder_map", storage=study_storage(url))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == len(complete) == 2 * TRIALS_PER_WORKER
    assert len({tuple(sorted(t.params.items())) for t in complete}) == len(complete)

    # each worker's runs logged val/map; together they are exactly the study's values, so both workers' trials
    # are in the one study, and the best value is a val/map a run logged
    logged, spans = [], []
    for seed in (1, 2):
        client = mlflow.MlflowClient(f"sqlite:///{tmp_path / f'worker{seed}' / 'mlflow.db'}")
        runs = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
        assert len(runs) == TRIALS_PER_WORKER
        logged += [run.data.metrics["val/map"] for run in runs]
        spans.append((min(r.info.start_time for r in runs), max(r.info.end_time for r in runs)))
    assert sorted(logged) == pytest.approx(sorted(t.value for t in complete), abs=1e-9)
    assert 0.0 < study.best_value <= 1.0 and study.best_value == pytest.approx(max(logged), abs=1e-9)
    # the workers ran at the same time, not one after the other
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]
