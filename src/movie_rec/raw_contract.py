"""The raw-data contract (DESIGN.md §2), enforced by the catalog on load.

Each raw dataset in ``conf/base/catalog.yml`` declares a ``validator:`` that resolves to
:class:`RawTableValidator`. It runs a pandera schema over the freshly read frame and turns
the failure report into one message per bad column that names the file, the column, the
first bad row (0-based data row and the 1-based line of the file) and the problem, then
returns the frame with integer columns cast to int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from kedro.validation import CheckFailure, DataValidationError

HEADER_LINES = 1


@dataclass(frozen=True)
class TableContract:
    """Columns of one raw file: integer columns and free-text columns."""

    int_columns: tuple[str, ...]
    text_columns: tuple[str, ...] = ()
    allow_empty: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        return self.int_columns + self.text_columns


CONTRACTS: dict[str, TableContract] = {
    "ratings": TableContract(("user", "item", "time"), allow_empty=False),
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


def build_schema(contract: TableContract) -> pa.DataFrameSchema:
    """The pandera schema of a raw table: integer-valued ids, non-blank text, no nulls."""
    columns = {
        name: pa.Column(
            nullable=False,
            checks=pa.Check(_is_integer_valued, error="not an integer"),
        )
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


def _problem(check: str | None, value: object) -> str:
    if check in (None, "not_nullable") or (isinstance(value, float) and np.isnan(value)):
        return "missing value"
    return f"{check} (value {value!r})"


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
        """Return ``data`` with int64 id columns, or raise naming file, column and row."""
        data = data.rename(columns=lambda name: str(name).strip())
        missing = [c for c in self.contract.columns if c not in data.columns]
        if missing:
            found = ", ".join(map(str, data.columns)) or "none"
            raise self._error(
                [
                    CheckFailure(
                        message=f"{self.file}: missing column '{c}' (columns found: {found})",
                        column=c,
                    )
                    for c in missing
                ]
            )
        if data.empty and not self.contract.allow_empty:
            raise self._error(
                [CheckFailure(message=f"{self.file}: the file has a header but no rows")]
            )
        try:
            self.schema.validate(data, lazy=True)
        except pa.errors.SchemaErrors as exc:
            raise self._error(self._failures(exc.failure_cases)) from exc
        return data.astype({c: "int64" for c in self.contract.int_columns})

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
                        f"{_problem(first['check'], first['failure_case'])}"
                    ),
                    column=str(column),
                    failure_count=int(rows["index"].nunique()),
                )
            )
        return failures
