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
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.paths import ResolvePath, relative_to_file
from prefdata.imported import ImageWriter, ImportedVote, pair_vote
from prefdata.tables import winner_first
from ranker.errors import ImportFormatError

if TYPE_CHECKING:  # datasets stays unimported until an export runs
    from prefdata.ours import PreferenceDataset

SPLITS = ("train", "test")
# Upstream's labels, and our tie, as the probability that the first image won.
LABELS = {1.0: 1.0, -1.0: 0.0, 0.5: 0.5}
EXPECTED = '{"train": [[winner, loser, 1], ...], "test": [...]}'


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


def export_joyquality(
    ds: PreferenceDataset, folder: str | Path, relative_paths: bool = False
) -> Path:
    """JoyQuality's training file: ``{"train": [[winner, loser, 1], ...], "test": [...]}``.

    The images are copied beside it (``images/<uid>.<ext>``); ties have no place in
    upstream's format and are left out. Paths are absolute unless ``relative_paths``
    (then relative to the JSON file's folder: run upstream's trainer from there).
    """
    folder = Path(folder).resolve()
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}

    def path_of(uid: str) -> str:
        if uid not in written:
            f = ds.tables.files[uid]
            target = image_dir / f"{uid}{Path(f.name).suffix.lower() or '.img'}"
            if not target.exists():
                shutil.copyfile(f.path, target)
            written[uid] = str(target.relative_to(folder) if relative_paths else target)
        return written[uid]

    doc = {
        split: [[path_of(w), path_of(lo), 1] for w, lo in winner_first(ds.tables.pairs[split])]
        for split in ("train", "test")
    }
    target = folder / "joyquality.json"
    target.write_text(json.dumps(doc, indent=1))
    return target


def read_joyquality(path: Path, writer: ImageWriter) -> tuple[list[ImportedVote], int, list[str]]:
    """JoyQuality's ``{"train": [[winner, loser, label], ...], "test": [...]}``, train first.

    Read by :mod:`prefdata.joyquality_json`, the reader training uses too: label 1 means
    the first image won, -1 the second (upstream's meaning), 0.5 a tie; rows with any
    other label, or paths that cannot be read, are reported by row and left out.
    """
    try:
        doc = read_document(path)
    except JoyQualityFormatError as exc:
        raise ImportFormatError(str(exc)) from exc
    votes, bad, rows = [], [], 0
    for row in iter_rows(doc, path.parent, writer.resolve_path):
        rows += 1
        if isinstance(row, RowError):
            bad.append(str(row))
            continue
        record = {"a": row.first, "b": row.second, "l0": row.p_first, "l1": 1.0 - row.p_first}
        vote = pair_vote(record, ("a", "b"), ("l0", "l1"), writer, path.parent, row.where)
        (bad if isinstance(vote, str) else votes).append(vote)
    return votes, rows, bad
