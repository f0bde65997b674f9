"""The raw-data contract (docs/architecture.md §3), enforced by the catalog on load.

Each raw dataset in ``conf/base/catalog.yml`` declares a ``validator:`` that resolves to
:class:`RawTableValidator`. It runs a pandera schema over the freshly read frame and turns
the failure report into one message per bad column that names the file, the column, the
first bad row (0-based data row and the 1-based line of the file) and the problem.

What it accepts, it normalises: blank lines are dropped, extra columns are dropped (with a
warning), integer columns become int64 (``12.0`` is 12; ``12.5`` is an error), text
columns become stripped strings (any non-blank text is a valid id: directors need not be
``nm…``), and times must lie between 1970 and now (unix seconds, not milliseconds).
Line numbers are exact when the file is read by :class:`movie_rec.datasets.RawCSVDataset`,
which keeps blank lines as empty rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from kedro.validation import CheckFailure, DataValidationError

logger = logging.getLogger(__name__)

HEADER_LINES = 1
SEPARATORS = (",", "\t", ";", "|")


@dataclass(frozen=True)
class TableContract:
    """Columns of one raw file: integer columns (some of them unix times) and free text."""

    int_columns: tuple[str, ...]
    text_columns: tuple[str, ...] = ()
    allow_empty: bool = True
    time_columns: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.int_columns + self.text_columns


CONTRACTS: dict[str, TableContract] = {
    "ratings": TableContract(("user", "item", "time"), allow_empty=False, time_columns=("time",)),
    "titles": TableContract(("item",), ("title",)),
    "years": TableContract(("item", "year")),
    "directors": TableContract(("item",), ("director",)),
    "writers": TableContract(("item",), ("writer",)),
    "genres": TableContract(("item",), ("genre",)),
}


def _is_integer_valued(values: pd.Series) -> pd.Series:
    """True where a value is a whole number (``12`` or ``12.0``), False for ``1.5`` or ``x``."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return pd.Series(True, index=values.index)
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.notna() & np.isfinite(numbers) & (numbers == np.floor(numbers))


def _is_non_blank_text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.len().fillna(0) > 0


def _not_negative(values: pd.Series) -> pd.Series:
    """False for a time before 1970; values that are not numbers are left to the int check."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.isna() | (numbers >= 0)


def _not_in_future(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.isna() | (numbers <= time.time())


def _int_checks(name: str, contract: TableContract) -> list[pa.Check]:
    checks = [pa.Check(_is_integer_valued, error="not an integer")]
    if name in contract.time_columns:
        checks += [
            pa.Check(_not_negative, error="a negative time (before 1970)"),
            pa.Check(
                _not_in_future, error="a time after now (unix seconds expected, not milliseconds)"
            ),
        ]
    return checks


def build_schema(contract: TableContract) -> pa.DataFrameSchema:
    """The pandera schema of a raw table: integer-valued ids, non-blank text, no nulls,
    times between 1970 and now."""
    columns = {
        name: pa.Column(nullable=False, checks=_int_checks(name, contract))
        for name in contract.int_columns
    }
    columns.update(
        {
            name: pa.Column(
                nullable=False,
                checks=pa.Check(_is_non_blank_text, error="empty text"),
            )
            for name in contract.text_columns
        }
    )
    return pa.DataFrameSchema(columns, strict=False)


def _problem(check: str | None, value: object, column: str) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if check in (None, "not_nullable") or (isinstance(value, float) and np.isnan(value)):
        return "missing value"
    if str(value).strip() == column:
        return f"a repeated header line (value {value!r})"
    return f"{check} (value {value!r})"


def _found_columns(columns: pd.Index) -> str:
    """The header as read, with a hint when it was not split by the expected separator."""
    found = ", ".join(repr(str(c)) for c in columns) or "none"
    if len(columns) == 1 and any(sep in str(columns[0]) for sep in SEPARATORS):
        found += "; is the file separated by another character?"
    return found


class RawTableValidator:
    """Catalog validator for one raw file of the competition format.

    Args:
        table: which contract applies (a key of :data:`CONTRACTS`).
        file: the file's path, used in error messages.
    """

    def __init__(self, table: str, file: str) -> None:
        if table not in CONTRACTS:
            raise ValueError(f"unknown raw table {table!r}; expected one of {sorted(CONTRACTS)}")
        self.table = table
        self.file = file
        self.contract = CONTRACTS[table]
        self.schema = build_schema(self.contract)

    def _error(self, failures: list[CheckFailure]) -> DataValidationError:
        return DataValidationError(
            f"{self.file} does not match the {self.table} contract",
            validator=f"{type(self).__module__}.{type(self).__qualname__}",
            failures=failures,
        )

    def validate(self, data: pd.DataFrame) -> pd.DataFrame:
        """Return the contract's columns, normalised, or raise naming file, column and row."""
        data = data.rename(columns=lambda name: str(name).strip())
        missing = [c for c in self.contract.columns if c not in data.columns]
        if missing:
            found = _found_columns(data.columns)
            raise self._error(
                [
                    CheckFailure(
                        message=f"{self.file}: missing column '{c}' (columns found: {found})",
                        column=c,
                    )
                    for c in missing
                ]
            )
        data = self._without_blank_lines(data)
        extra = [c for c in data.columns if c not in self.contract.columns]
        if extra:
            logger.warning("%s: extra columns ignored: %s", self.file, ", ".join(extra))
        data = data[list(self.contract.columns)]
        if data.empty and not self.contract.allow_empty:
            raise self._error(
                [CheckFailure(message=f"{self.file}: the file has a header but no rows")]
            )
        try:
            self.schema.validate(data, lazy=True)
        except pa.errors.SchemaErrors as exc:
            raise self._error(self._failures(exc.failure_cases)) from exc
        return self._normalised(data)

    def _without_blank_lines(self, data: pd.DataFrame) -> pd.DataFrame:
        """Rows with every field empty (blank lines) dropped; the index keeps line numbers."""
        blank = data.isna().all(axis=1)
        if not blank.any():
            return data
        logger.info("%s: %d blank lines skipped", self.file, int(blank.sum()))
        return data.loc[~blank]

    def _normalised(self, data: pd.DataFrame) -> pd.DataFrame:
        ints = {c: pd.to_numeric(data[c]).astype("int64") for c in self.contract.int_columns}
        texts = {c: data[c].astype("str").str.strip() for c in self.contract.text_columns}
        return data.assign(**ints, **texts).reset_index(drop=True)

    def _failures(self, cases: pd.DataFrame) -> list[CheckFailure]:
        """One failure per column, pointing at its first bad row."""
        cases = cases.dropna(subset=["index"]).sort_values("index")
        failures = []
        for column, rows in cases.groupby("column", sort=False):
            first = rows.iloc[0]
            row = int(first["index"])
            failures.append(
                CheckFailure(
                    message=(
                        f"{self.file}: column '{column}', first bad row {row} "
                        f"(line {row + HEADER_LINES + 1}): "
                        f"{_problem(first['check'], first['failure_case'], str(column))}"
                    ),
                    column=str(column),
                    failure_count=int(rows["index"].nunique()),
                )
            )
        return failures
