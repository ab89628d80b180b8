"""The Optuna study storage of `-m hparams_search=...` sweeps: one database that several workers share.

Workers started with the same `hydra.sweeper.study_name` and storage join ONE study (hydra-optuna-sweeper calls
`optuna.create_study(load_if_exists=True)`): each asks the study for its next trial, so they split the trials and
TPE samples from everything any worker has finished. configs/hparams_search/optuna_map.yaml builds the storage with
`study_storage` (`_target_`), a SQLite file by default and any SQLAlchemy URL (PostgreSQL for a team) by override.

Why not a plain URL: hydra-optuna-sweeper 1.3 requires optuna<3, and optuna 2.10's RDBStorage predates SQLAlchemy 2,
which mlflow and the audit trail need. It stamps its alembic schema revision on a connection it never commits, so on
a new database the stamp is rolled back (its version check fails with a bare AssertionError) or, with the check
skipped, the open stamp holds SQLite's write lock and the study's first write fails with "database is locked", even
in a single process. `initialise_schema` creates the tables and stamps the revision in a committed transaction
first; RDBStorage then finds the schema initialised and writes normally.

SQLite and several writers: SQLite lets one connection write at a time; a writer that finds the file locked waits up
to the driver's `timeout`, 5 s by default. A trial's writes take milliseconds, but TPE's `ask` reads every trial, so
`lock_timeout_s` (60 s) is passed as the driver's timeout through RDBStorage's `engine_kwargs`. Two workers that
initialise a new file at the same moment would both find it empty and both create the tables; a lock file beside the
database (`<db>.lock`, POSIX `flock`) makes them take turns. A server database (PostgreSQL) is initialised once:
`python -m medcoder.jobs.sweep_storage URL` before the workers start (docs/SCALE.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
from collections.abc import Iterator
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from optuna.storages import RDBStorage
from optuna.storages._rdb import models as optuna_models
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

# optuna's own migration scripts, shipped in its package: the revision RDBStorage checks for
OPTUNA_ALEMBIC_DIR = Path(optuna_models.__file__).parent / "alembic"


def sqlite_file(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL; None for an in-memory SQLite or a server database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def engine_kwargs(url: str, lock_timeout_s: float) -> dict:
    """SQLAlchemy engine arguments: SQLite waits `lock_timeout_s` for another writer instead of failing at 5 s."""
    return {"connect_args": {"timeout": lock_timeout_s}} if make_url(url).get_backend_name() == "sqlite" else {}


@contextlib.contextmanager
def initialisation_lock(url: str) -> Iterator[None]:
    """Workers initialising one SQLite file take turns (its parent folder is created); no lock for a server."""
    path = sqlite_file(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def initialise_schema(url: str, kwargs: dict) -> None:
    """Optuna's tables and alembic revision, committed (what optuna 2.10 leaves uncommitted under SQLAlchemy 2)."""
    engine = create_engine(url, **kwargs)
    try:
        optuna_models.BaseModel.metadata.create_all(engine)
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            if context.get_current_revision() is None:
                context.stamp(ScriptDirectory(str(OPTUNA_ALEMBIC_DIR)), "head")
    finally:
        engine.dispose()


def study_storage(url: str, lock_timeout_s: float = 60.0) -> RDBStorage:
    """The RDBStorage of a sweep's study at `url`, its schema initialised once however many workers start."""
    kwargs = engine_kwargs(url, lock_timeout_s)
    with initialisation_lock(url):
        initialise_schema(url, kwargs)
        return RDBStorage(url, engine_kwargs=kwargs)


if __name__ == "__main__":
    study_storage(sys.argv[1])
    print(f"initialised the Optuna schema at {make_url(sys.argv[1]).render_as_string(hide_password=True)}")
