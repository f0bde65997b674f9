"""One Optuna study run by three processes at once, on PostgreSQL and on a journal file.

Each process runs :func:`movie_rec.tuning.studies.run_study` as the ``tune`` node does; the
study must end with exactly ``n_trials`` finished trials, every process must return the same
best trial, and (the determinism a parallel study keeps, see the module docstring of
``movie_rec.tuning.studies``) a study of at most 10 trials must hold the trials, parameters
and values of the same study run by one process. The PostgreSQL server is a throw-away one
(``initdb`` and ``pg_ctl`` of the distribution's package, which ``./dev.sh test`` installs).
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from movie_rec.tuning.storage import study_storage
from movie_rec.tuning.studies import PLACES, finished_trials, open_study, run_study
from tests.tuning.test_studies import _objective as value_of

N_TRIALS = 7
PROCESSES = 3
SEED = 11


def objective(trial: optuna.Trial) -> float:
    time.sleep(0.5)  # long enough for the three processes' trials to overlap
    return value_of(trial)


def tune(storage: str, start: Any, results: Any) -> None:
    """One process: open the study when the others do and run it to its budget."""
    opened = study_storage(storage, "unused", "unused")  # may race the others to create tables
    start.wait()
    study = open_study("shared", opened, SEED)
    run = run_study(study, objective, N_TRIALS, None, first_trial={"x": 0.5})
    results.put((run.trials_run, run.study.best_trial.number))


def run_in_processes(storage: str) -> list[tuple[int, int]]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=tune, args=(storage, start, results)) for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return [results.get(timeout=5) for _ in processes]


def trial_record(study: optuna.Study) -> list[tuple[int, dict, float]]:
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    return [(trial.number, trial.params, trial.value) for trial in complete]


@pytest.fixture(scope="module")
def one_process_study(tmp_path_factory) -> optuna.Study:
    """The same study run by a single process (its default SQLite storage)."""
    folder = tmp_path_factory.mktemp("one_process")
    study = open_study("shared", study_storage(None, folder, "t"), SEED)
    return run_study(study, objective, N_TRIALS, None, first_trial={"x": 0.5}).study


def check_shared_study(storage: str, one_process_study: optuna.Study) -> None:
    outcomes = run_in_processes(storage)
    study = optuna.load_study(
        study_name="shared", storage=study_storage(storage, "unused", "unused")
    )
    assert finished_trials(study) == N_TRIALS
    assert len(study.get_trials(states=PLACES)) == N_TRIALS
    assert sum(trials_run for trials_run, _ in outcomes) == N_TRIALS
    assert all(trials_run >= 1 for trials_run, _ in outcomes)  # the three shared the work
    assert {best for _, best in outcomes} == {study.best_trial.number}
    assert trial_record(study) == trial_record(one_process_study)
    assert study.trials[0].params["x"] == 0.5  # trial 0 tried the fixed default


def test_a_journal_study_shared_by_three_processes_holds_exactly_n_trials(
    tmp_path, one_process_study
):
    check_shared_study(str(tmp_path / "shared" / "studies.log"), one_process_study)


def server_binaries() -> tuple[str, str] | None:
    """``initdb`` and ``pg_ctl``: on the PATH or in Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(on_path):
        return on_path
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if versions and os.access(f"{versions[-1]}/initdb", os.X_OK):
        return f"{versions[-1]}/initdb", f"{versions[-1]}/pg_ctl"
    return None


def as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run ``command`` as the postgres account."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a Unix socket in a temporary folder."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL server not found (initdb, pg_ctl): ./dev.sh test installs Debian's "
            "postgresql package, which needs root and apt-get"
        )
    initdb, pg_ctl = binaries
    root = Path(tempfile.mkdtemp(prefix="movie_rec_postgres_"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    options = f"-k {root} -c listen_addresses='' -c fsync=off"
    start = [pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"]
    try:
        for command in ([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], start):
            subprocess.run(as_server_user(command), check=True, capture_output=True)
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        if data.exists():
            subprocess.run(as_server_user(stop), check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_postgresql_study_shared_by_three_processes_holds_exactly_n_trials(
    postgres_url, one_process_study
):
    check_shared_study(postgres_url, one_process_study)


def test_the_place_of_a_trial_whose_process_died_goes_to_a_new_trial(tmp_path):
    """A RUNNING trial whose heartbeat stopped (its process was killed) is failed once its
    grace period passes, and the study still ends with exactly n_trials finished trials."""
    storage = study_storage(None, tmp_path, "t", heartbeat_seconds=1)
    study = open_study("s", storage, SEED)
    dead = study.ask()  # a trial whose process died before it could finish
    storage.record_heartbeat(dead._trial_id)
    run = run_study(study, objective, 3, None)
    states = [trial.state for trial in run.study.trials]
    assert states[0] == optuna.trial.TrialState.FAIL
    assert finished_trials(run.study) == 3 and run.trials_run == 3
