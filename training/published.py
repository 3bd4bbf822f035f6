"""Training pairs from a published preference dataset folder, read straight from Parquet.

Two layouts are read the same way:

- ours (``prefdata.ours``): pair rows hold image uids only
  (``data/{train,test}-*.parquet``) and every image is stored once in the ``images``
  table (``images/*.parquet``);
- older or Pick-a-Pic-style datasets: each pair row embeds ``image_0``/``image_1``.

An image is taken from the ``images`` table when its uid is there, else from its pair
row's cell. Only uids, labels and the ranking column are read up front; every image
stays in its Parquet cell (:class:`training.data.ParquetCell`) until a worker reads it,
so memory is bounded by a row group, not by the dataset. No ``datasets`` cache copy.

Example::

    data = read_published(Path("exports/my-project"), rank_by="mu")
    data.summary()["train_pairs"]
"""

from __future__ import annotations

from pathlib import Path

from common.paths import ResolvePath, relative_to_file
from training.data import (
    HUMAN_RANKING_BT,
    DataError,
    Pairs,
    ParquetCell,
    PreferenceData,
    _bt_human,
    _Index,
    _label,
)

PAIRS_SPLITS = ("train", "test")
TABLE_DIRS = ("images", "votes")  # not pair tables (prefdata.tables.CONFIG_DIRS)
NEEDED = ("image_0_uid", "image_1_uid", "label_0")


def published_files(folder: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Parquet files of the pairs splits and of the images table under ``folder``.

    Our layout: ``data/{train,test}-*.parquet`` for the pairs, ``images/*.parquet`` for
    the images; the vote log (``votes/``) is not needed. Other folders of Parquet files
    are read by split name (``train*``, ``test*``).
    """
    pairs: dict[str, list[str]] = {s: [] for s in PAIRS_SPLITS}
    images = sorted(str(p) for p in (folder / "images").glob("*.parquet"))
    pair_dir = folder / "data" if (folder / "data").is_dir() else folder
    for path in sorted(pair_dir.rglob("*.parquet")):
        if path.relative_to(folder).parts[0] in TABLE_DIRS:
            continue
        for split in PAIRS_SPLITS:
            if path.name.startswith(split) or split in path.parent.name:
                pairs[split].append(str(path))
                break
    return pairs, images


def read_published(
    folder: Path,
    *,
    rank_by: str = "mu",
    description: str = "preference dataset",
    resolve_path: ResolvePath = relative_to_file,
) -> PreferenceData:
    """Checked :class:`PreferenceData` from a published folder (either layout above)."""
    import pyarrow.parquet as pq

    pair_files, image_files = published_files(folder)
    stored, ranks = _image_table(image_files, rank_by, resolve_path)
    index = _Index()
    splits: dict[str, Pairs] = {}
    for split in PAIRS_SPLITS:
        a, b, y = [], [], []
        for file in pair_files[split]:
            pf = pq.ParquetFile(file)
            names = pf.schema_arrow.names
            absent = [c for c in NEEDED if c not in names]
            if absent:
                raise DataError(f"{description}: {Path(file).name} lacks columns {absent}")
            for group in range(pf.num_row_groups):
                table = pf.read_row_group(group, columns=list(NEEDED)).to_pydict()
                for i, (u0, u1, label) in enumerate(zip(*table.values(), strict=True)):
                    where = f"{description} {Path(file).name} row group {group} row {i}"
                    ids = []
                    for side, uid in ((0, u0), (1, u1)):
                        source = stored.get(str(uid))
                        if source is None:
                            if f"image_{side}" not in names:
                                raise DataError(
                                    f"{where}: image {uid} is neither in the images table "
                                    "nor embedded in the pair row"
                                )
                            source = ParquetCell(file, group, i, f"image_{side}", resolve_path)
                        ids.append(index.add(str(uid), source))
                    a.append(ids[0])
                    b.append(ids[1])
                    y.append(_label(label, where))
        splits[split] = Pairs(*(_array(v, t) for v, t in ((a, "i8"), (b, "i8"), (y, "f4"))))
    data = PreferenceData(
        keys=index.keys,
        sources=index.sources,
        train=splits["train"],
        test=splits["test"],
        human={},
        ranking_name=HUMAN_RANKING_BT,
        description=description,
    )
    data.check()
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
    files: list[str], rank_by: str, resolve_path: ResolvePath
) -> tuple[dict[str, ParquetCell], dict[str, float]]:
    """Where each uid's image is stored, and its ``rank_by`` value, without the bytes."""
    import pyarrow.parquet as pq

    stored: dict[str, ParquetCell] = {}
    ranks: dict[str, float] = {}
    for file in files:
        pf = pq.ParquetFile(file)
        names = pf.schema_arrow.names
        if "uid" not in names or "image" not in names:
            continue
        columns = ["uid"] + ([rank_by] if rank_by in names else [])
        for group in range(pf.num_row_groups):
            table = pf.read_row_group(group, columns=columns).to_pydict()
            for i, uid in enumerate(table["uid"]):
                stored.setdefault(str(uid), ParquetCell(file, group, i, "image", resolve_path))
            if rank_by in table:
                for uid, value in zip(table["uid"], table[rank_by], strict=True):
                    if value is not None:
                        ranks[str(uid)] = float(value)
    return stored, ranks


def _array(values: list, dtype: str):
    import numpy as np

    return np.array(values, dtype=dtype)
