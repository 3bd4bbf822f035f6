"""Rows in, Parquet shards out, in memory bounded by one row group.

The writer behind every published table: rows are buffered until ``group_bytes`` of
payload, written as one row group, and a new shard file starts past ``shard_bytes``.
Files are named as ``datasets`` and the Hub expect (``train-00000-of-00003.parquet``);
the ``-of-N`` is known only at the end, so shards are renamed on :meth:`close`. The
``datasets`` features travel in the schema metadata, so ``load_dataset`` decodes
``Image`` columns without being told.

Example:
    >>> with ShardWriter(folder, "train", features) as out:    # doctest: +SKIP
    ...     for row in rows:
    ...         out.add(row, nbytes=len(row["image"]["bytes"]))
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SHARD_BYTES = 400 * 1024**2  # per file on the Hub (its viewer likes < 500 MB)
# Image row groups stay near 1 MB: a reader that wants one image (training, random
# order) decodes one row group, so a larger group would be read for every image in it.
IMAGE_GROUP_BYTES = 1024**2
# Rows with two embedded images (the Pick-a-Pic-style export) are read sequentially.
PAIR_GROUP_BYTES = 64 * 1024**2
MAX_GROUP_ROWS = 10_000  # rows without images: one group per this many rows


class ShardWriter:
    """Write rows as ``folder/<split>-XXXXX-of-NNNNN.parquet`` shards, streaming."""

    def __init__(
        self,
        folder: str | Path,
        split: str,
        features,
        *,
        shard_bytes: int = SHARD_BYTES,
        group_bytes: int = IMAGE_GROUP_BYTES,
    ) -> None:
        self.folder, self.split = Path(folder), split
        self.schema: pa.Schema = features.arrow_schema
        self.shard_bytes, self.group_bytes = shard_bytes, group_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rows: list[dict] = []
        self._group = 0  # payload bytes buffered
        self._shard = 0  # payload bytes in the open shard
        self._writer: pq.ParquetWriter | None = None
        self._parts: list[Path] = []
        self.rows = 0

    def add(self, row: dict, nbytes: int = 0) -> None:
        """Buffer one row; ``nbytes`` is its payload (image bytes) for the size limits."""
        if self._writer is not None and self._shard + nbytes > self.shard_bytes:
            self._flush()
            self._writer.close()
            self._writer, self._shard = None, 0
        self._rows.append(row)
        self._group += nbytes
        self._shard += nbytes
        self.rows += 1
        if self._group >= self.group_bytes or len(self._rows) >= MAX_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._writer is None:
            part = self.folder / f".{self.split}-{len(self._parts):05d}.parquet.part"
            self._parts.append(part)
            self._writer = pq.ParquetWriter(part, self.schema)
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        self._writer.write_table(table, row_group_size=len(self._rows))
        self._rows, self._group = [], 0

    def close(self) -> list[Path]:
        """Finish the last shard and give the shards their final names."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._parts:  # an empty table is still one (empty) shard
            self._parts.append(self.folder / f".{self.split}-00000.parquet.part")
            pq.write_table(self.schema.empty_table(), self._parts[0])
        n = len(self._parts)
        final = [self.folder / f"{self.split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        for part, target in zip(self._parts, final, strict=True):
            part.replace(target)
        self._parts = []
        return final

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        if self._writer is not None:
            self._writer.close()
        for part in self._parts:
            part.unlink(missing_ok=True)
