"""Custom Kedro datasets for objects pandas datasets cannot hold."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
import scipy.sparse as sp
from kedro.io import AbstractDataset
from kedro.io.core import get_filepath_str, get_protocol_and_path


class SparseMatrixDataset(AbstractDataset[sp.csr_matrix, sp.csr_matrix]):
    """A scipy sparse matrix stored as a compressed ``.npz`` file (``scipy.sparse.save_npz``)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata

    def load(self) -> sp.csr_matrix:
        path = get_filepath_str(self._filepath, self._protocol)
        with self._fs.open(path, mode="rb") as handle:
            return sp.load_npz(handle).tocsr()

    def save(self, data: sp.spmatrix) -> None:
        path = get_filepath_str(self._filepath, self._protocol)
        self._fs.makedirs(str(self._filepath.parent), exist_ok=True)
        with self._fs.open(path, mode="wb") as handle:
            sp.save_npz(handle, sp.csr_matrix(data), compressed=True)

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol}
