"""Training pairs from a published preference dataset folder, read straight from Parquet.

Two layouts are read the same way:

- ours (``prefdata.ours``): pair rows hold image uids only
  (``data/{train,test}-*.parquet``) and every image is stored once in the ``images``
  table (``images/*.parquet``);
- older or Pick-a-Pic-style datasets: each pair row embeds ``image_0``/``image_1``.

Files and rows come from the reader import uses too (:mod:`prefdata.parquet_read`,
:func:`prefdata.parquet_rows.rows`). An image is taken from the ``images`` table when its
uid is there, else from its pair row's cell. Only uids, labels and the ranking column
are read up front; every image stays in its Parquet cell (:class:`ParquetCell`) until a
worker reads it, so memory is bounded by a row group, not by the dataset. No
``datasets`` cache copy.

Example::

    data = read_published(Path("exports/my-project"), rank_by="mu")
    data.summary()["train_pairs"]
"""

from __future__ import annotations

from pathlib import Path

from common.paths import ResolvePath, relative_to_file
from prefdata.parquet_read import image_files, pair_files, split_of
from prefdata.parquet_rows import column_names, rows
from training.data import (
    DataError,
    ParquetCell,
    PreferenceData,
    _bt_human,
    _Index,
    _label,
    checked_data,
)

PAIRS_SPLITS = ("train", "test")
NEEDED = ("image_0_uid", "image_1_uid", "label_0")
UID_BATCH_ROWS = 10_000  # rows per batch when no image is read: uids and labels only


def published_files(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Parquet files of the pairs splits and of the images table under ``folder``.

    Our layout: ``data/{train,test}-*.parquet`` for the pairs, ``images/*.parquet`` for
    the images; the vote log (``votes/``) is not needed. Other folders of Parquet files
    are read by split name (``train*``, ``test*``).
    """
    pairs: dict[str, list[Path]] = {s: [] for s in PAIRS_SPLITS}
    for path in pair_files(folder):
        split = split_of(path, folder)
        if split in pairs:
            pairs[split].append(path)
    return pairs, image_files(folder)


def read_published(
    folder: Path,
    *,
    rank_by: str = "mu",
    description: str = "preference dataset",
    resolve_path: ResolvePath = relative_to_file,
) -> PreferenceData:
    """Checked :class:`PreferenceData` from a published folder (either layout above)."""
    pair_paths, image_paths = published_files(folder)
    stored, ranks = _image_table(image_paths, rank_by, resolve_path)
    index = _Index()
    columns: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in PAIRS_SPLITS}
    for split in PAIRS_SPLITS:
        a, b, y = columns[split]
        for file in pair_paths[split]:
            names = column_names(file)
            absent = [c for c in NEEDED if c not in names]
            if absent:
                raise DataError(f"{description}: {file.name} lacks columns {absent}")
            cells = [c for c in ("image_0", "image_1") if c in names]
            for row in rows(
                file, NEEDED, cells=cells, resolve_path=resolve_path, batch_rows=UID_BATCH_ROWS
            ):
                u0, u1, label = (row.values[c] for c in NEEDED)
                where = f"{description} {row.where}"
                ids = []
                for side, uid in ((0, u0), (1, u1)):
                    source = stored.get(str(uid)) or row.values.get(f"image_{side}")
                    if source is None:
                        raise DataError(
                            f"{where}: image {uid} is neither in the images table "
                            "nor embedded in the pair row"
                        )
                    ids.append(index.add(str(uid), source))
                a.append(ids[0])
                b.append(ids[1])
                y.append(_label(label, where))
    data = checked_data(index, columns, description)
    human = {}
    for i in data.test_images():
        value = ranks.get(data.keys[i])
        if value is None:
            human = {}  # an incomplete ranking would bias the correlation: refit instead
            break
        human[int(i)] = float(value)
    if human:
        data.human, data.ranking_name = human, f"TrueSkill {rank_by} of the test images"
    else:
        data.human = _bt_human(data.test)
    return data


def _image_table(
    files: list[Path], rank_by: str, resolve_path: ResolvePath
) -> tuple[dict[str, ParquetCell], dict[str, float]]:
    """Where each uid's image is stored, and its ``rank_by`` value, without the bytes."""
    stored: dict[str, ParquetCell] = {}
    ranks: dict[str, float] = {}
    for file in files:
        columns = ["uid"] + ([rank_by] if rank_by in column_names(file) else [])
        for row in rows(
            file, columns, cells=["image"], resolve_path=resolve_path, batch_rows=UID_BATCH_ROWS
        ):
            uid, value = str(row.values["uid"]), row.values.get(rank_by)
            stored.setdefault(uid, row.values["image"])
            if value is not None:
                ranks[uid] = float(value)
    return stored, ranks
