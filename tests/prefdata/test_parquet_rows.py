"""The one row reader: import's values and training's lazy cells name the same rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefdata.parquet_read import pair_files, split_of
from prefdata.parquet_rows import DataError, ParquetCell, cell_bytes, rows


def _table(path: Path, n: int, group_rows: int) -> None:
    images = [{"bytes": f"img-{i}".encode(), "path": None} for i in range(n)]
    pq.write_table(pa.table({"uid": [f"u{i}" for i in range(n)], "image": images}), path,
                   row_group_size=group_rows)  # fmt: skip


def test_lazy_cells_point_at_the_rows_the_values_come_from(tmp_path):
    path = tmp_path / "images.parquet"
    _table(path, 23, group_rows=5)  # five row groups, the last one short
    eager = list(rows(path, ["uid", "image"], batch_rows=4))
    lazy = list(rows(path, ["uid"], cells=["image"], batch_rows=7))
    assert [r.values["uid"] for r in eager] == [r.values["uid"] for r in lazy]
    assert [(r.row_group, r.row) for r in lazy][4:7] == [(0, 4), (1, 0), (1, 1)]
    assert lazy[-1].where == "images.parquet row group 4 row 2"
    for e, z in zip(eager, lazy, strict=True):
        assert isinstance(z.values["image"], ParquetCell)
        assert z.values["image"].read() == e.values["image"]["bytes"]


def test_a_cell_without_an_image_names_where(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"image": [{"bytes": None, "path": None}]}), path)
    with pytest.raises(DataError, match=r"t.parquet row group 0 row 0 column 'image': .*empty"):
        ParquetCell(str(path), 0, 0, "image").read()
    with pytest.raises(ValueError, match=r"no image in this cell \(int\)"):
        cell_bytes(3, tmp_path, lambda cell, base: cell)
    with pytest.raises(ValueError, match=r"image 'gone.png' cannot be read"):
        cell_bytes("gone.png", tmp_path, lambda cell, base: str(base / cell))


def test_pair_files_by_split_skip_the_tables_and_hidden_folders(tmp_path):
    for rel in ("data/test-0.parquet", "data/train-0.parquet", "images/i.parquet",
                "votes/v.parquet", ".cache/train-x.parquet", "default/partial-train/0.parquet"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in pair_files(tmp_path)]
    assert found == [
        "data/train-0.parquet",
        "default/partial-train/0.parquet",
        "data/test-0.parquet",
    ]
    assert [split_of(tmp_path / f, tmp_path) for f in found] == ["train", "train", "test"]
    # the dataset's own folder name says nothing about a file's split
    flat = tmp_path / "my-test-set"
    flat.mkdir()
    assert split_of(flat / "pairs.parquet", flat) is None
