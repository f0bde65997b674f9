"""Custom Kedro datasets: atomic writes, sparse matrices and the raw competition files.

**Atomic writes.** Every file dataset the catalog writes saves to a hidden temporary file
in the target's folder and renames it into place with ``os.replace``, so a save that fails
half-way (an exception, a killed process, a full disk) leaves the previous file intact and
no partial file where a complete one is expected. Use the ``movie_rec.datasets.Atomic*``
types in place of their ``kedro_datasets`` parents; their arguments are the same, and
``versioned: true`` works as usual (the new version appears complete or not at all).

**Records.** :class:`RecordJSONDataset` saves a record of :mod:`movie_rec.records` as JSON
and loads it back as that record: nodes pass records, JSON exists only in the file.

**Raw files.** :class:`RawCSVDataset` reads a raw competition file the way
``pandas.CSVDataset`` does, but names the file (and line) of what pandas cannot read and
keeps the row → line mapping that :mod:`movie_rec.raw_contract` reports with.
"""

from __future__ import annotations

import codecs
import inspect
import os
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import fsspec
import pandas as pd
import scipy.sparse as sp
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path
from kedro.utils import load_obj
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from kedro_datasets.pickle import PickleDataset
from kedro_datasets.text import TextDataset

from movie_rec import records
from movie_rec.models.config import ParamsConfig
from movie_rec.registry import spec


class AtomicSave:
    """Mixin: the parent dataset's ``save`` writes a temporary file, renamed into place.

    The parent writes wherever ``_get_save_path`` points; during a save that is
    ``.<name>.<random>.tmp`` beside the target. Local files only: other protocols (object
    stores, which publish an object only once it is complete) save as the parent does.
    """

    _staging_path: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        return self._staging_path or self._target_path()

    def _target_path(self) -> PurePosixPath:
        """Where the saved file must end up (the versioned path of a versioned dataset)."""
        return super()._get_save_path()  # type: ignore[misc]

    def _save_atomically(self, parent_save: Callable[[Any, Any], None], data: Any) -> None:
        save = inspect.unwrap(parent_save)  # the parent's own save, not Kedro's wrapper
        if self._protocol != "file":  # type: ignore[attr-defined]
            save(self, data)
            return
        target = self._target_path()
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        self._staging_path = staging
        try:
            save(self, data)
            os.replace(staging, target)
        finally:
            self._staging_path = None
            Path(staging).unlink(missing_ok=True)


class AtomicCSVDataset(AtomicSave, CSVDataset):
    """``pandas.CSVDataset`` with an atomic save."""

    def save(self, data: pd.DataFrame) -> None:
        self._save_atomically(CSVDataset.save, data)


class AtomicParquetDataset(AtomicSave, ParquetDataset):
    """``pandas.ParquetDataset`` with an atomic save."""

    def save(self, data: pd.DataFrame) -> None:
        self._save_atomically(ParquetDataset.save, data)


class AtomicJSONDataset(AtomicSave, JSONDataset):
    """``json.JSONDataset`` with an atomic save."""

    def save(self, data: Any) -> None:
        self._save_atomically(JSONDataset.save, data)


class RecordJSONDataset(AtomicJSONDataset):
    """A record of :mod:`movie_rec.records` (``record``: its class, e.g.
    ``movie_rec.records.ModelMetrics``) saved as JSON by its ``to_json`` and loaded by its
    ``from_json``; a disabled model's :class:`~movie_rec.records.Skipped` either way."""

    def __init__(self, *, record: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._record = load_obj(record)

    def load(self) -> records.JsonRecord:
        return records.from_json(self._record, super().load())

    def save(self, data: records.JsonRecord) -> None:
        super().save(data.to_json())


class HyperparametersDataset(AtomicJSONDataset):
    """A registered model's hyperparameters (``model``: its registry name) as its config
    dataclass in memory and as that config's fields in JSON."""

    def __init__(self, *, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._config = spec(model).config

    def load(self) -> ParamsConfig:
        return self._config.from_params(super().load())

    def save(self, data: ParamsConfig) -> None:
        super().save(data.to_dict())


class AtomicPickleDataset(AtomicSave, PickleDataset):
    """``pickle.PickleDataset`` with an atomic save."""

    def save(self, data: Any) -> None:
        self._save_atomically(PickleDataset.save, data)


class AtomicTextDataset(AtomicSave, TextDataset):
    """``text.TextDataset`` with an atomic save."""

    def save(self, data: str) -> None:
        self._save_atomically(TextDataset.save, data)


class SparseMatrixDataset(AtomicSave, AbstractDataset[sp.csr_matrix, sp.csr_matrix]):
    """A scipy sparse matrix stored as a compressed ``.npz`` file (``scipy.sparse.save_npz``)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata

    def _target_path(self) -> PurePosixPath:
        return self._filepath

    def load(self) -> sp.csr_matrix:
        path = get_filepath_str(self._filepath, self._protocol)
        with self._fs.open(path, mode="rb") as handle:
            return sp.load_npz(handle).tocsr()

    def save(self, data: sp.spmatrix) -> None:
        self._save_atomically(SparseMatrixDataset._write, data)

    def _write(self, data: sp.spmatrix) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        self._fs.makedirs(str(self._filepath.parent), exist_ok=True)
        with self._fs.open(path, mode="wb") as handle:
            sp.save_npz(handle, sp.csr_matrix(data), compressed=True)

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol}


WIDE_ENCODINGS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


class RawCSVDataset(CSVDataset):
    """A raw competition file, read by ``pandas.read_csv`` with the catalog's ``load_args``.

    On top of them it reads with ``index_col=False`` (a delimiter at the end of every line
    adds no column and shifts none) and ``skip_blank_lines=False`` (a blank line is a row of
    missing values, which the raw contract drops, so row ``r`` is always line ``r + 2``).
    It stops, naming the file, on a 0-byte file, a file that is not UTF-8 (a UTF-8
    byte-order mark is fine) and a row with more fields than the header (naming its line).
    """

    DEFAULT_LOAD_ARGS: ClassVar[dict[str, Any]] = {"index_col": False, "skip_blank_lines": False}

    def load(self) -> pd.DataFrame:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, mode="rb") as handle:
            _check_encoding(path, handle.read(4096))
        read = inspect.unwrap(CSVDataset.load)
        try:
            with warnings.catch_warnings():
                # pandas only warns when index_col=False drops a non-empty extra field
                warnings.simplefilter("error", pd.errors.ParserWarning)
                return read(self)
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path}: line {self._first_non_utf8_line(path)} is not UTF-8 text "
                f"({exc.reason}); save the file as UTF-8"
            ) from exc
        except pd.errors.EmptyDataError as exc:
            raise DatasetError(f"{path}: the file has no header line") from exc
        except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
            line = self._first_line_with_extra_fields(path)
            where = f"line {line} has more fields than the header" if line else "unreadable"
            raise DatasetError(f"{path}: {where} ({str(exc).strip()})") from exc

    def _first_non_utf8_line(self, path: str) -> int | str:
        with self._fs.open(path, mode="rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
        return "?"

    def _first_line_with_extra_fields(self, path: str) -> int | None:
        """1-based number of the first line with a non-empty field past the header's width."""
        separator = str(self._load_args.get("sep", ",")).encode()
        with self._fs.open(path, mode="rb") as handle:
            width = len(next(handle).split(separator))
            for number, line in enumerate(handle, start=2):
                if any(field.strip() for field in line.split(separator)[width:]):
                    return number
        return None


def _check_encoding(path: str, head: bytes) -> None:
    """Stop on a 0-byte file or one that is plainly not UTF-8 (UTF-16/32, NUL bytes)."""
    if not head:
        raise DatasetError(f"{path}: the file is empty (0 bytes); it needs a header line")
    for mark, encoding in WIDE_ENCODINGS.items():
        if head.startswith(mark):
            raise DatasetError(f"{path}: the file is {encoding} text; save it as UTF-8")
    if b"\x00" in head:
        raise DatasetError(
            f"{path}: the file holds NUL bytes (UTF-16 without a byte-order mark, or not "
            "text); save it as UTF-8"
        )
