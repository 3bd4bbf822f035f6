"""Training data: read preference pairs from any source into one checked form.

Three sources end in the same :class:`PreferenceData`:

- a JoyQuality JSON file (``{"train": [[winner, loser, 1], ...], "test": [...]}``);
- a dataset published by the Dataset tab (local Parquet folder or Hub id): a ``pairs``
  table with ``train``/``test`` splits and an ``images`` table (``common.contracts``);
- a ranking project, written as that same layout first (``training.sources``).

Published tables are read by :mod:`training.published` through the reader import uses
(:mod:`prefdata.parquet_read`); images stay in their Parquet cells (:class:`ParquetCell`)
until a worker needs them.

Everything is checked before a model is loaded: empty splits, missing files and
unreadable labels raise :class:`DataError` (the preference-data error of
:mod:`prefdata.parquet_rows`) naming what is wrong. No torch here.

Example::

    data = read_json_pairs("pairs.json")
    data.train.label  # probability that image a won: 1, 0 or 0.5 (a tie)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.paths import ResolvePath, relative_to_file
from prefdata import joyquality_json as jq
from prefdata.parquet_rows import DataError, ParquetCell
from training.metrics import bradley_terry_fit

HUMAN_RANKING_BT = "Bradley-Terry fit of the test pairs"


ImageSource = str | bytes | ParquetCell


def image_file(source: ImageSource) -> str | io.BytesIO:
    """What ``PIL.Image.open`` takes for a source: a path or an in-memory file."""
    if isinstance(source, str):
        return source
    if isinstance(source, ParquetCell):
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


def checked_data(
    index: _Index, columns: dict[str, tuple[list, list, list]], description: str
) -> PreferenceData:
    """Checked data over ``index``'s images from each split's ``(a, b, label)`` lists; the
    caller sets its human ranking (a Bradley-Terry fit of the test pairs until then)."""
    splits = {
        s: Pairs(np.array(a, np.int64), np.array(b, np.int64), np.array(y, np.float32))
        for s, (a, b, y) in columns.items()
    }
    data = PreferenceData(
        keys=index.keys,
        sources=index.sources,
        train=splits["train"],
        test=splits["test"],
        human={},
        ranking_name=HUMAN_RANKING_BT,
        description=description,
    )
    return data.check()


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


def read_json_pairs(
    path: str | Path, resolve_path: ResolvePath = relative_to_file
) -> PreferenceData:
    """Read a JoyQuality JSON file (:mod:`prefdata.joyquality_json`, shared with the import).

    Labels as upstream means them: 1 the first image won, -1 the second; 0.5 is our tie;
    anything else is refused naming the row. Relative paths are read from the file's
    folder. The human ranking of the test images is a Bradley-Terry fit of the test
    pairs, since the file carries no rating of its own.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such JSON file")
    try:
        doc = jq.read_document(path)
    except jq.JoyQualityFormatError as exc:
        raise DataError(str(exc)) from None
    if any(split not in doc for split in jq.SPLITS):
        raise DataError(f"{path}: expected {jq.EXPECTED}")
    index = _Index()
    columns: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in jq.SPLITS}
    for row in jq.iter_rows(doc, path.parent, resolve_path):
        if isinstance(row, jq.RowError):
            raise DataError(f"{path.name} {row}")
        a, b, y = columns[row.split]
        first, second = str(Path(row.first).resolve()), str(Path(row.second).resolve())
        a.append(index.add(first, first))
        b.append(index.add(second, second))
        y.append(row.p_first)
    data = checked_data(index, columns, f"JoyQuality JSON {path.name}")
    data.human = _bt_human(data.test)
    return data
