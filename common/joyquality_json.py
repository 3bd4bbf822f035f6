"""JoyQuality's pair file, read once for the ranker's import and for training.

The file is ``{"train": [[first, second, label], ...], "test": [...]}`` as upstream's
``train.py`` reads it (``read_dataset``, ``PairwiseImages``): label ``1`` means the first
image won and ``-1`` that the second won (upstream swaps the pair); upstream refuses
``0``. We also take ``0.5``, our tie, and a two-item row as label 1. Any other label is
an error naming the row: ``0`` in particular is refused rather than guessed, since
upstream treats it as a tie it cannot train on, while others use it for "second wins".

Relative image paths are read from the JSON file's folder (upstream opens them from its
working directory; our exports write them relative to the file). Every path goes through
one ``resolve_path(cell, base)`` callable, the single place a path gate applies.

Example:
    >>> rows = list(iter_rows({"train": [["a.png", "b.png", -1]]}, Path("/data")))
    >>> rows[0].first, rows[0].p_first, rows[0].where
    ('/data/a.png', 0.0, 'train[0]')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "test")
# Upstream's labels, and our tie, as the probability that the first image won.
LABELS = {1.0: 1.0, -1.0: 0.0, 0.5: 0.5}
EXPECTED = '{"train": [[winner, loser, 1], ...], "test": [...]}'

ResolvePath = Callable[[str, Path], str]


class JoyQualityFormatError(ValueError):
    """A JoyQuality file or row that cannot be read; the message names where."""


@dataclass(frozen=True)
class PairRow:
    """One row: resolved paths of the two images and P(first image won): 1, 0 or 0.5."""

    split: str
    index: int
    first: str
    second: str
    p_first: float

    @property
    def where(self) -> str:
        return f"{self.split}[{self.index}]"


@dataclass(frozen=True)
class RowError:
    """A row that was left out, and why."""

    split: str
    index: int
    message: str

    @property
    def where(self) -> str:
        return f"{self.split}[{self.index}]"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def relative_to_file(cell: str, base: Path) -> str:
    """The default path rule: absolute paths as written, relative ones from ``base``."""
    path = Path(cell)
    return str(path if path.is_absolute() else base / path)


def read_document(path: str | Path) -> dict:
    """Parse the file and check its shape (a dict with a ``train`` or ``test`` list)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JoyQualityFormatError(f"{path.name} is not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or not any(isinstance(doc.get(s), list) for s in SPLITS):
        raise JoyQualityFormatError(f"{path.name} is not a JoyQuality dataset: expected {EXPECTED}")
    for split in SPLITS:
        if split in doc and not isinstance(doc[split], list):
            raise JoyQualityFormatError(
                f"{path.name}: {split!r} must be a list of [winner, loser, label]"
            )
    return doc


def label_probability(value: object) -> float:
    """P(first image won) for a label; raises :class:`JoyQualityFormatError` otherwise.

    >>> label_probability(-1), label_probability(0.5)
    (0.0, 0.5)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JoyQualityFormatError(f"label {value!r} is not a number: use 1, -1 or 0.5")
    if float(value) not in LABELS:
        hint = " (upstream reads 0 as a tie it refuses)" if value == 0 else ""
        raise JoyQualityFormatError(
            f"label {value!r} must be 1 (first wins), -1 (second wins) or 0.5 (tie){hint}"
        )
    return LABELS[float(value)]


def iter_rows(
    doc: dict, base: Path, resolve_path: ResolvePath = relative_to_file
) -> Iterator[PairRow | RowError]:
    """Every row of ``train`` then ``test``, as a :class:`PairRow` or a :class:`RowError`.

    Callers choose what an error means: the import leaves the row out and reports it,
    training refuses the file.
    """
    for split in SPLITS:
        for i, entry in enumerate(doc.get(split) or []):
            yield _row(split, i, entry, base, resolve_path)


def _row(split: str, i: int, entry: object, base: Path, resolve: ResolvePath):
    if not isinstance(entry, list) or len(entry) not in (2, 3):
        return RowError(split, i, f"expected [winner_path, loser_path, label], got {entry!r:.80}")
    paths = []
    for cell in entry[:2]:
        if not isinstance(cell, str) or not cell:
            return RowError(split, i, f"{cell!r:.80} is not an image path")
        try:
            paths.append(resolve(cell, base))
        except ValueError as exc:  # a path gate refusing the path
            return RowError(split, i, str(exc))
    try:
        p_first = label_probability(entry[2]) if len(entry) == 3 else 1.0
    except JoyQualityFormatError as exc:
        return RowError(split, i, str(exc))
    return PairRow(split, i, paths[0], paths[1], p_first)
