"""Where Optuna studies live: one machine's SQLite file, or a storage several processes share
(an RDB such as PostgreSQL, or a journal file on shared storage), for :mod:`tuning`."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc

RDB_DIALECTS = ("postgresql", "mysql", "sqlite")
HEARTBEAT_SECONDS = 60  # how often an RDB storage records that a running trial is alive
SCHEMA_ATTEMPTS = 3  # tries to open an RDB storage whose tables another process is creating


def storage_url(storage_dir: str | Path, file_stem: str) -> str:
    """``sqlite:///<storage_dir>/optuna_<file_stem>.db``, creating the folder."""
    folder = Path(storage_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'optuna_{file_stem}.db').resolve()}"


def rdb_dialect(storage: str) -> str | None:
    """The database of an RDB URL (``postgresql+psycopg2://…`` → ``postgresql``); ``None``
    for anything else (the path of a journal file)."""
    scheme, separator, _ = storage.partition("://")
    return scheme.split("+")[0] if separator else None


def study_storage(
    storage: str | None,
    storage_dir: str | Path,
    file_stem: str,
    heartbeat_seconds: int = HEARTBEAT_SECONDS,
) -> optuna.storages.BaseStorage:
    """The storage of the studies: ``storage`` (``tuning.storage``) or, when it is ``None``,
    the SQLite file of :func:`storage_url`.

    ``storage`` is an RDB URL (``postgresql://user:password@host/db``; the database must
    exist and its driver be installed) or the path of a journal file (created with its
    folder). An RDB storage records a heartbeat of every running trial every
    ``heartbeat_seconds``: a trial silent for three times that (its process died) is failed
    and its place goes to a new trial. Optuna's journal storage has no heartbeat: there, a
    trial whose process died stays RUNNING until it is failed by hand (``study.tell(number,
    state=optuna.trial.TrialState.FAIL)``).
    """
    if storage is not None and rdb_dialect(storage) is None:
        path = Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    url = storage or storage_url(storage_dir, file_stem)
    for attempt in range(1, SCHEMA_ATTEMPTS):
        try:
            return rdb_storage(url, heartbeat_seconds)
        except sqlalchemy.exc.DBAPIError:  # processes meeting a new database race to create
            time.sleep(attempt)  # its tables: the others find them there on their next try
    return rdb_storage(url, heartbeat_seconds)


def rdb_storage(url: str, heartbeat_seconds: int) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_seconds, grace_period=3 * heartbeat_seconds
        )
