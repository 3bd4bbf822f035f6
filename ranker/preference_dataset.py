"""A project's preference dataset as ``datasets`` objects, and its local files.

Built in memory from :mod:`ranker.dataset`'s plain tables, with every image's bytes
embedded (read once per image; each pair row holds its own copy, as in Pick-a-Pic).
Written as a Parquet folder that ``datasets.load_dataset`` reads unchanged, as
JoyQuality's training JSON, or as TRL ``chosen``/``rejected`` pairs.

Example:
    >>> ds = build_preference_dataset(project, test_fraction=0.1, seed=0)  # doctest: +SKIP
    >>> ds["train"][0]["label_0"], ds["images"].column_names[:2]            # doctest: +SKIP
    (1.0, ['uid', 'image'])
    >>> save_parquet(ds, "exports/my-project")                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, Features, Image, Value

from ranker.contracts import (
    IMAGES_COLUMNS,
    IMAGES_EXTRA_COLUMNS,
    PAIRS_COLUMNS,
    PAIRS_EXTRA_COLUMNS,
    PROJECT_FILE,
    TRL_COLUMNS,
    TRL_EXTRA_COLUMNS,
    VOTES_COLUMNS,
)
from ranker.dataset import (
    CONFIG_DIRS,
    PreferenceTables,
    SplitReport,
    build_tables,
    config_splits,
)
from ranker.dataset_card import dataset_card
from ranker.errors import StudioError

SHARD_BYTES = 400 * 1024**2  # Parquet shard size on the Hub (its viewer likes < 500 MB)
PROJECT_FORMAT = "preference-studio-dataset"

_STR, _F64, _I64 = Value("string"), Value("float64"), Value("int64")
# The type of every column; the column names and their order come from ranker.contracts.
COLUMN_TYPES = {
    "image_0": Image(),
    "image_1": Image(),
    "image": Image(),
    "chosen": Image(),
    "rejected": Image(),
    "prompt": _STR,
    "image_0_uid": _STR,
    "image_1_uid": _STR,
    "best_image_uid": _STR,
    "uid": _STR,
    "label_0": _F64,
    "label_1": _F64,
    "labeler": _STR,
    "created_at": _F64,
    "instruction": _STR,
    "project": _STR,
    "response_ms": _F64,
    "rank": _I64,
    "mu": _F64,
    "sigma": _F64,
    "conservative": _F64,
    "wins": _I64,
    "losses": _I64,
    "ties": _I64,
    "comparisons": _I64,
    "excluded": Value("bool"),
    "exclusion_reason": _STR,
    "context": _STR,
    "split": _STR,
    "prior_mu": _F64,
    "prior_sigma": _F64,
}


def _features(columns: tuple[str, ...]) -> Features:
    return Features({c: COLUMN_TYPES[c] for c in columns})


PAIRS_FEATURES = _features(PAIRS_COLUMNS + PAIRS_EXTRA_COLUMNS)
IMAGES_FEATURES = _features(IMAGES_COLUMNS + IMAGES_EXTRA_COLUMNS)
VOTES_FEATURES = _features(VOTES_COLUMNS)


# --- build ---------------------------------------------------------------------------------
@dataclass
class PreferenceDataset:
    """Pairs (train/test), the images table and the vote log as ``datasets.Dataset`` objects.

    Indexable like a ``DatasetDict``: ``ds["train"]``, ``ds["test"]``, ``ds["images"]``,
    ``ds["votes"]``. ``tables`` keeps the plain rows and the split report.
    """

    train: Dataset
    test: Dataset
    images: Dataset
    votes: Dataset
    tables: PreferenceTables
    blobs: dict[str, bytes]

    def __getitem__(self, key: str) -> Dataset:
        if key not in self.keys():
            raise KeyError(f"{key!r}: a preference dataset has {', '.join(self.keys())}")
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return ("train", "test", "images", "votes")

    @property
    def report(self) -> SplitReport:
        return self.tables.report

    def card(self, repo_id: str | None = None) -> str:
        return dataset_card(self.tables, repo_id)

    def image(self, uid: str) -> dict:
        """The ``datasets`` Image value of one image: its bytes and file name."""
        return {"bytes": self.blobs[uid], "path": self.tables.files[uid].name}


def build_preference_dataset(
    project, test_fraction: float = 0.1, seed: int = 0, labelers: str = "publish"
) -> PreferenceDataset:
    """A project's non-undone votes as an in-memory preference dataset (no files written).

    ``project`` is a :class:`ranker.service.ProjectSession`; ``labelers`` is
    ``"publish"``, ``"hash"`` or ``"drop"``. Image bytes are embedded (read once per
    image; a pair row holds its own copy, as in Pick-a-Pic).
    """
    return dataset_from_tables(build_tables(project, test_fraction, seed, labelers))


def dataset_from_tables(tables: PreferenceTables) -> PreferenceDataset:
    ds = PreferenceDataset(None, None, None, None, tables, _read_images(tables))

    def pairs(rows: list[dict]) -> Dataset:
        full = [
            {**r, "image_0": ds.image(r["image_0_uid"]), "image_1": ds.image(r["image_1_uid"])}
            for r in rows
        ]
        return _from_rows(full, PAIRS_FEATURES)

    ds.train, ds.test = pairs(tables.pairs["train"]), pairs(tables.pairs["test"])
    ds.images = _from_rows(
        [{**r, "image": ds.image(r["uid"])} for r in tables.images], IMAGES_FEATURES
    )
    ds.votes = _from_rows(tables.votes, VOTES_FEATURES)
    return ds


def _from_rows(rows: list[dict], features: Features) -> Dataset:
    return Dataset.from_dict({c: [r[c] for r in rows] for c in features}, features=features)


def _read_images(tables: PreferenceTables) -> dict[str, bytes]:
    blobs, missing = {}, []
    for uid, f in tables.files.items():
        try:
            blobs[uid] = Path(f.path).read_bytes()
        except OSError as exc:
            missing.append(f"{f.path} ({exc.strerror or exc})")
    if missing:
        shown = "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise StudioError(
            f"{len(missing)} image files of project {tables.project!r} cannot be read, so the "
            f"dataset cannot embed them: {shown}. Put them back or re-add the folder."
        )
    return blobs


# --- local exports -------------------------------------------------------------------------
def save_parquet(ds: PreferenceDataset, folder: str | Path, repo_id: str | None = None) -> Path:
    """Write the dataset folder: Parquet shards per config, README card, project file.

    ``datasets.load_dataset(str(folder))`` and
    ``load_dataset("parquet", data_files=str(folder / "data/train-*.parquet"))`` both
    load it unchanged. An existing folder's tables are replaced.
    """
    folder = Path(folder)
    for sub in CONFIG_DIRS.values():
        shutil.rmtree(folder / sub, ignore_errors=True)
    tables = {
        "default": {"train": ds.train, "test": ds.test},
        "images": {"train": ds.images},
        "votes": {"train": ds.votes},
    }
    for config, splits in config_splits(ds.tables).items():
        for split in splits:
            _write_shards(tables[config][split], folder / CONFIG_DIRS[config], split)
    (folder / "README.md").write_text(ds.card(repo_id), encoding="utf-8")
    (folder / PROJECT_FILE).write_text(json.dumps(project_metadata(ds.tables), indent=1))
    return folder


def project_metadata(tables: PreferenceTables) -> dict:
    """What a re-import needs beyond the tables: name, instruction, settings, split."""
    r = tables.report
    return {
        "format": PROJECT_FORMAT,
        "version": 1,
        "project": tables.project,
        "instruction": tables.instruction,
        "settings": tables.settings,
        "rating": tables.rating,
        "labelers": tables.labeler_policy,
        "split": {k: getattr(r, k) for k in r.__dataclass_fields__},
    }


def _write_shards(ds: Dataset, folder: Path, split: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n = max(1, math.ceil(ds.data.nbytes / SHARD_BYTES))
    for i in range(n):
        shard = ds.shard(n, i, contiguous=True) if n > 1 else ds
        shard.to_parquet(str(folder / f"{split}-{i:05d}-of-{n:05d}.parquet"))


def winner_first(rows: list[dict]) -> Iterator[tuple[str, str]]:
    """(winner uid, loser uid) of each decided pair row, in order; ties are skipped."""
    for r in rows:
        if r["label_0"] != r["label_1"]:
            left_wins = r["label_0"] > r["label_1"]
            yield (
                (r["image_0_uid"], r["image_1_uid"])
                if left_wins
                else (r["image_1_uid"], r["image_0_uid"])
            )


def export_joyquality(
    ds: PreferenceDataset, folder: str | Path, relative_paths: bool = False
) -> Path:
    """JoyQuality's training file: ``{"train": [[winner, loser, 1], ...], "test": [...]}``.

    The images are written beside it (``images/<uid>.<ext>``); ties have no place in
    this format and are left out. Paths are absolute unless ``relative_paths`` (then
    they are relative to the JSON file's folder: run the trainer from there).
    """
    folder = Path(folder).resolve()
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}

    def path_of(uid: str) -> str:
        if uid not in written:
            suffix = Path(ds.tables.files[uid].name).suffix.lower() or ".img"
            target = image_dir / f"{uid}{suffix}"
            if not target.exists():
                target.write_bytes(ds.blobs[uid])
            written[uid] = str(target.relative_to(folder) if relative_paths else target)
        return written[uid]

    doc = {
        split: [[path_of(w), path_of(lo), 1] for w, lo in winner_first(ds.tables.pairs[split])]
        for split in ("train", "test")
    }
    target = folder / "joyquality.json"
    target.write_text(json.dumps(doc, indent=1))
    return target


def trl_dataset(ds: PreferenceDataset) -> dict[str, Dataset]:
    """TRL-style ``chosen`` / ``rejected`` image pairs per split, with the instruction as
    ``prompt`` (ties left out)."""
    features = _features(TRL_COLUMNS + TRL_EXTRA_COLUMNS)
    out = {}
    for split in ("train", "test"):
        rows = [
            {"chosen": ds.image(w), "rejected": ds.image(lo), "prompt": ds.tables.instruction}
            for w, lo in winner_first(ds.tables.pairs[split])
        ]
        out[split] = _from_rows(rows, features)
    return out


def export_trl(ds: PreferenceDataset, folder: str | Path) -> Path:
    """Write the TRL pairs as Parquet (``train.parquet``, ``test.parquet``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, table in trl_dataset(ds).items():
        table.to_parquet(str(folder / f"{split}.parquet"))
    return folder
