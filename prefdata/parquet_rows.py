"""Rows of a Parquet file, and image cells read only when wanted: the one row reader.

Import and training read the same tables (:mod:`prefdata.parquet_read` says which files
and columns) through :func:`rows`, with different memory bounds:

- import reads the image cells as values, ``batch_rows`` rows at a time, decodes each
  image once and writes it to a file (:mod:`prefdata.imported`);
- training leaves every image in its file: :func:`rows` returns a :class:`ParquetCell`
  (file, row group, row, column) in place of the value, without reading the column, and
  a DataLoader worker calls :meth:`ParquetCell.read` when it needs the pixels.

A cell holds an Image struct (``{"bytes", "path"}``), raw bytes or a path;
:func:`cell_bytes` is the one place its bytes are taken, and a path in it goes through
the caller's ``resolve_path`` (the path gate), relative to the table's folder.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from common.paths import ResolvePath, relative_to_file

BATCH_ROWS = 16  # rows per batch when images are read as values: a few MB


class DataError(ValueError):
    """Preference data that cannot be used; the message names the file, row and fault."""


def cell_bytes(value: Any, base: Path, resolve_path: ResolvePath) -> tuple[bytes, str | None]:
    """Bytes and file name of an image cell: an Image struct, raw bytes, or a path
    (relative to ``base``, through ``resolve_path``). ``ValueError`` says what is wrong."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            return bytes(data), path
        if not path:
            raise ValueError("the image cell is empty")
    elif isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), None  # empty bytes: the decoder says "not an image"
    elif isinstance(value, str) and value:
        path = value
    else:
        raise ValueError(f"no image in this cell ({type(value).__name__})")
    try:
        return Path(resolve_path(path, base)).read_bytes(), path
    except OSError as exc:
        raise ValueError(f"image {path!r} cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ValueError(f"image {path!r} cannot be read ({exc})") from None


@dataclass(frozen=True)
class ParquetCell:
    """An image held in one cell of a Parquet file, read only when a worker needs it.

    Reading decodes one row group of one column (published image shards keep row groups
    near 1 MB, so that is about one image), never the table: memory stays bounded by a
    row group whatever the dataset's size. Picklable, so DataLoader workers read it too.
    """

    file: str
    row_group: int
    row: int
    column: str
    resolve_path: ResolvePath = relative_to_file

    def read(self) -> bytes:
        """The image bytes; :class:`DataError` naming the cell if there are none."""
        cell = _row_group(self.file, self.row_group, self.column).column(0)[self.row].as_py()
        try:
            return cell_bytes(cell, Path(self.file).parent, self.resolve_path)[0]
        except ValueError as exc:
            where = f"{Path(self.file).name} row group {self.row_group} row {self.row}"
            raise DataError(f"{where} column {self.column!r}: {exc}") from None


@dataclass(frozen=True)
class Row:
    """One row: ``values`` by column (a :class:`ParquetCell` for each lazy column)."""

    file: Path
    row_group: int
    row: int  # within the row group
    values: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.file.name} row group {self.row_group} row {self.row}"


def rows(
    file: str | Path,
    columns: Sequence[str],
    *,
    cells: Sequence[str] = (),
    resolve_path: ResolvePath = relative_to_file,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Row]:
    """The rows of ``file`` in order, ``batch_rows`` at a time: ``columns`` as values, and
    each of ``cells`` as a :class:`ParquetCell` that is not read here. At least one
    column must be read as a value (it gives the row count)."""
    import pyarrow.parquet as pq

    file = Path(file)
    with pq.ParquetFile(file) as pf:  # not the cached handle: the file may be new
        counts = (pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups))
        starts = [0, *accumulate(counts)]
        index = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=list(columns)):
            for values in batch.to_pylist():
                group = bisect_right(starts, index) - 1
                row = index - starts[group]
                for column in cells:
                    values[column] = ParquetCell(str(file), group, row, column, resolve_path)
                yield Row(file, group, row, values)
                index += 1


def column_names(file: str | Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(file).names


@lru_cache(maxsize=2)
def _row_group(file: str, row_group: int, column: str):
    return parquet_file(file).read_row_group(row_group, columns=[column])


@lru_cache(maxsize=16)
def parquet_file(file: str):
    import pyarrow.parquet as pq

    return pq.ParquetFile(file)
