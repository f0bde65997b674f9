"""Atomic saves: a save that fails half-way leaves the previous file as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from kedro.io import DatasetError, Version

from movie_rec.datasets import (
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicParquetDataset,
    AtomicPickleDataset,
    AtomicTextDataset,
    SparseMatrixDataset,
)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot print")


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"user": np.arange(n), "item": np.arange(n) % 7})


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle")


# dataset factory, a first value, a value whose save fails after writing part of the file
CASES = {
    "csv": (
        lambda path: AtomicCSVDataset(filepath=str(path / "t.csv"), save_args={"chunksize": 10}),
        _frame(5),
        _frame(1000).assign(item=[0] * 999 + [Unprintable()]),
    ),
    "parquet": (
        lambda path: AtomicParquetDataset(filepath=str(path / "t.parquet")),
        _frame(5),
        _frame(1000).assign(item=[0] * 999 + ["text"]),
    ),
    "json": (
        lambda path: AtomicJSONDataset(filepath=str(path / "t.json")),
        {"recall": 0.5},
        {"recall": list(range(10_000)), "bad": object()},
    ),
    "pickle": (
        lambda path: AtomicPickleDataset(filepath=str(path / "t.pkl")),
        {"weights": np.ones(3)},
        [np.zeros(200_000), Unpicklable()],
    ),
    "npz": (
        lambda path: SparseMatrixDataset(filepath=str(path / "t.npz")),
        sp.csr_matrix(np.eye(3, dtype=np.float32)),
        "not a matrix",
    ),
}


def _same(loaded, expected) -> bool:
    if isinstance(expected, pd.DataFrame):
        return loaded.equals(expected)
    if sp.issparse(expected):
        return (loaded != expected).nnz == 0
    if isinstance(expected, dict) and "weights" in expected:
        return np.array_equal(loaded["weights"], expected["weights"])
    return loaded == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_save_leaves_the_previous_file(tmp_path, case):
    make, first, bad = CASES[case]
    dataset = make(tmp_path)
    dataset.save(first)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DatasetError):
        dataset.save(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary left behind
    assert _same(make(tmp_path).load(), first)


def test_text_saves_in_place(tmp_path):
    AtomicTextDataset(filepath=str(tmp_path / "report.html")).save("<p>report</p>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert AtomicTextDataset(filepath=str(tmp_path / "report.html")).load() == "<p>report</p>"


def test_a_save_replaces_the_file(tmp_path):
    dataset = AtomicCSVDataset(filepath=str(tmp_path / "out" / "t.csv"))
    dataset.save(_frame(3))
    dataset.save(_frame(4))
    assert dataset.load().equals(_frame(4))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["t.csv"]


def test_versioned_saves_keep_every_version_and_a_failed_one_adds_none(tmp_path):
    def versioned(save: str | None = None) -> AtomicCSVDataset:
        return AtomicCSVDataset(
            filepath=str(tmp_path / "submission.csv"), version=Version(None, save)
        )

    versioned("2026-01-01T00.00.00.000Z").save(_frame(3))
    versioned("2026-01-02T00.00.00.000Z").save(_frame(4))
    with pytest.raises(DatasetError):
        versioned("2026-01-03T00.00.00.000Z").save(_frame(5).assign(item=Unprintable()))
    saved = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv*"))
    assert saved == [
        "submission.csv",
        "submission.csv/2026-01-01T00.00.00.000Z/submission.csv",
        "submission.csv/2026-01-02T00.00.00.000Z/submission.csv",
    ]
    assert versioned().load().equals(_frame(4))
