"""Training data: read preference pairs from any source into one checked form.

Three sources end in the same :class:`PreferenceData`:

- a JoyQuality JSON file (``{"train": [[winner, loser, 1], ...], "test": [...]}``);
- a dataset published by the Dataset tab (local Parquet folder or Hub id): a ``pairs``
  table with ``train``/``test`` splits and an ``images`` table (``ranker.contracts``);
- a ranking project, turned into those same tables by ``ranker.hub`` in memory.

Everything is checked before a model is loaded: empty splits, missing files and
unreadable labels raise :class:`DataError` naming what is wrong. No torch here.

Example::

    data = read_json_pairs("pairs.json")
    data.train.label  # probability that image a won: 1, 0 or 0.5 (a tie)
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.metrics import bradley_terry_fit

HUMAN_RANKING_BT = "Bradley-Terry fit of the test pairs"


class DataError(ValueError):
    """Training data that cannot be used; says which file or entry and what to do."""


@dataclass(frozen=True)
class TableImage:
    """An image stored in a table row (memory-mapped Arrow), read only when needed."""

    table: Any  # datasets.Dataset with the column cast to Image(decode=False)
    row: int
    column: str

    def read(self) -> bytes:
        cell = self.table[self.row][self.column]
        data = cell.get("bytes") if isinstance(cell, dict) else cell
        if data:
            return data
        path = cell.get("path") if isinstance(cell, dict) else None
        if path and Path(path).is_file():
            return Path(path).read_bytes()
        raise DataError(f"row {self.row} of column {self.column!r} holds no image bytes")


ImageSource = str | bytes | TableImage


def image_file(source: ImageSource) -> str | io.BytesIO:
    """What ``PIL.Image.open`` takes for a source: a path or an in-memory file."""
    if isinstance(source, str):
        return source
    if isinstance(source, TableImage):
        source = source.read()
    return io.BytesIO(source)


@dataclass(frozen=True)
class Pairs:
    """One split: ``label[i]`` is the probability that image ``a[i]`` beat image ``b[i]``."""

    a: np.ndarray
    b: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.label.size)

    def images(self) -> np.ndarray:
        return np.unique(np.concatenate([self.a, self.b]))


@dataclass
class PreferenceData:
    """Images (``keys`` and ``sources``, aligned) and the train/test pairs over them.

    ``human`` maps test-image index -> human score (higher is better), the ranking that
    Spearman and Kendall are measured against; ``ranking_name`` says where it came from.
    """

    keys: list[str]
    sources: list[ImageSource]
    train: Pairs
    test: Pairs
    human: dict[int, float]
    ranking_name: str
    description: str

    def test_images(self) -> np.ndarray:
        return self.test.images()

    def overlap(self) -> int:
        """Test images that also appear in training pairs (0 for an image-disjoint split)."""
        return int(np.intersect1d(self.train.images(), self.test.images()).size)

    def summary(self) -> dict[str, Any]:
        ties = float(np.mean(self.train.label == 0.5)) if len(self.train) else 0.0
        return {
            "source": self.description,
            "train_pairs": len(self.train),
            "test_pairs": len(self.test),
            "images": len(self.keys),
            "test_images": int(self.test_images().size),
            "train_test_overlap": self.overlap(),
            "train_tie_share": round(ties, 4),
            "human_ranking": self.ranking_name,
        }

    def check(self) -> PreferenceData:
        """Raise :class:`DataError` for empty splits or image files that are not there."""
        if len(self.train) == 0:
            raise DataError(f"{self.description}: the training split has no pairs")
        if len(self.test) == 0:
            raise DataError(
                f"{self.description}: the test split has no pairs; hold out some pairs "
                "(about 10%) whose images never appear in training"
            )
        used = np.union1d(self.train.images(), self.test.images())
        missing = [
            self.keys[i]
            for i in used
            if isinstance(self.sources[i], str) and not Path(self.sources[i]).is_file()
        ]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(
                f"{self.description}: {len(missing)} image file(s) not found: {shown}. "
                "Fix the paths (relative paths are read relative to the JSON file)."
            )
        return self


class _Index:
    """Assigns one integer per image key, keeping the first source seen."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.sources: list[ImageSource] = []
        self._ids: dict[str, int] = {}

    def add(self, key: str, source: ImageSource) -> int:
        if key not in self._ids:
            self._ids[key] = len(self.keys)
            self.keys.append(key)
            self.sources.append(source)
        return self._ids[key]

    def get(self, key: str) -> int | None:
        return self._ids.get(key)


def _bt_human(test: Pairs) -> dict[int, float]:
    images = test.images()
    local = {int(g): i for i, g in enumerate(images)}
    a = np.array([local[int(i)] for i in test.a])
    b = np.array([local[int(i)] for i in test.b])
    strengths = bradley_terry_fit(a, b, test.label, images.size)
    return {int(g): float(strengths[i]) for i, g in enumerate(images)}


def _label(value: Any, where: str) -> float:
    try:
        label = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: label {value!r} is not a number") from None
    if not 0.0 <= label <= 1.0:
        raise DataError(f"{where}: label {label} must be 1 (first wins), 0 or 0.5 (tie)")
    return label


def read_json_pairs(path: str | Path) -> PreferenceData:
    """Read a JoyQuality JSON file; relative image paths are relative to the file.

    The label is the probability that the first image won: upstream writes 1 (winner
    first); 0 and 0.5 (a tie) are accepted too. The human ranking of the test images is a
    Bradley-Terry fit of the test pairs, since the file carries no rating of its own.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such JSON file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "train" not in doc or "test" not in doc:
        raise DataError(f'{path}: expected {{"train": [[winner, loser, 1], ...], "test": [...]}}')
    index = _Index()
    splits: dict[str, Pairs] = {}
    for split in ("train", "test"):
        rows = doc[split]
        if not isinstance(rows, list):
            raise DataError(f"{path}: {split!r} must be a list of [winner, loser, label]")
        a, b, y = [], [], []
        for n, row in enumerate(rows):
            where = f"{path.name} {split}[{n}]"
            if not isinstance(row, Sequence) or isinstance(row, str) or len(row) not in (2, 3):
                raise DataError(f"{where}: expected [winner_path, loser_path, label]")
            files = []
            for item in row[:2]:
                if not isinstance(item, str) or not item:
                    raise DataError(f"{where}: {item!r} is not an image path")
                file = Path(item) if Path(item).is_absolute() else path.parent / item
                files.append(str(file.resolve()))
            a.append(index.add(files[0], files[0]))
            b.append(index.add(files[1], files[1]))
            y.append(_label(row[2] if len(row) == 3 else 1, where))
        splits[split] = Pairs(np.array(a, np.int64), np.array(b, np.int64), np.array(y, np.float32))
    data = PreferenceData(
        keys=index.keys,
        sources=index.sources,
        train=splits["train"],
        test=splits["test"],
        human={},
        ranking_name=HUMAN_RANKING_BT,
        description=f"JoyQuality JSON {path.name}",
    )
    data.check()
    data.human = _bt_human(data.test)
    return data


def from_tables(
    pairs: Mapping[str, Any],
    images: Any | None = None,
    *,
    rank_by: str = "mu",
    description: str = "preference dataset",
) -> PreferenceData:
    """Build :class:`PreferenceData` from our published layout (``ranker.contracts``).

    ``pairs`` maps split name (``train``, ``test``) to a ``datasets.Dataset`` with
    ``image_0``, ``image_1`` (Image feature), ``image_0_uid``, ``image_1_uid`` and
    ``label_0``; ``images`` is the images table (``uid``, ``image``, ``mu``,
    ``conservative``...) whose ``rank_by`` column ranks the test images. Without it the
    ranking is a Bradley-Terry fit of the test pairs.
    """
    from datasets import Image

    for split in ("train", "test"):
        if split not in pairs:
            raise DataError(f"{description}: no {split!r} split in the pairs table")
    index = _Index()
    lookup: dict[str, TableImage] = {}
    if images is not None and "image" in images.column_names and len(images):
        table = images.cast_column("image", Image(decode=False))
        for row, uid in enumerate(table["uid"]):
            lookup[str(uid)] = TableImage(table, row, "image")
    splits: dict[str, Pairs] = {}
    for split in ("train", "test"):
        table = pairs[split]
        needed = ("image_0", "image_1", "image_0_uid", "image_1_uid", "label_0")
        absent = [c for c in needed if c not in table.column_names]
        if absent:
            raise DataError(f"{description}: {split} pairs lack columns {absent}")
        table = table.cast_column("image_0", Image(decode=False))
        table = table.cast_column("image_1", Image(decode=False))
        ids: list[list[int]] = [[], []]
        for side in (0, 1):
            for row, uid in enumerate(table[f"image_{side}_uid"]):
                source = lookup.get(str(uid)) or TableImage(table, row, f"image_{side}")
                ids[side].append(index.add(str(uid), source))
        labels = [_label(v, f"{description} {split}[{i}]") for i, v in enumerate(table["label_0"])]
        splits[split] = Pairs(
            np.array(ids[0], np.int64), np.array(ids[1], np.int64), np.array(labels, np.float32)
        )
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
    data.human = _table_human(data, images, rank_by)
    if data.human:
        data.ranking_name = f"TrueSkill {rank_by} of the test images"
    else:
        data.human = _bt_human(data.test)
    return data


def _table_human(data: PreferenceData, images: Any | None, rank_by: str) -> dict[int, float]:
    if images is None or rank_by not in images.column_names:
        return {}
    values = dict(zip(map(str, images["uid"]), images[rank_by], strict=True))
    human = {}
    for i in data.test_images():
        value = values.get(data.keys[i])
        if value is None:
            return {}  # an incomplete ranking would bias the correlation: refit instead
        human[int(i)] = float(value)
    return human
