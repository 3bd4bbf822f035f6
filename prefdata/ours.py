"""A project's preference dataset as files: each image stored once, pairs by uid.

Built from :mod:`prefdata.tables`'s plain tables. The published folder holds the pair
tables (``data/``: image uids and labels, a small row per vote), every image once with
its rating (``images/``) and the vote log (``votes/``), so its size is about the image
bytes plus ~100 bytes per vote. Everything is written streaming
(:class:`prefdata.parquet_shards.ShardWriter`): an image's bytes are read from its file
when its row is written, so memory is bounded by a row group, not by the project.

Opt-in exports, streamed the same way: Pick-a-Pic-style pair rows with both images
embedded (:func:`export_embedded`), JoyQuality's training JSON, TRL ``chosen``/
``rejected`` pairs.

Example:
    >>> ds = build_preference_dataset(project, test_fraction=0.1, seed=0)  # doctest: +SKIP
    >>> ds["train"][0]["label_0"], ds["images"].column_names[:2]            # doctest: +SKIP
    (1.0, ['uid', 'image'])
    >>> save_parquet(ds, "exports/my-project")                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, Features, Image, Value

from common.contracts import (
    EMBEDDED_IMAGE_COLUMNS,
    IMAGES_COLUMNS,
    IMAGES_EXTRA_COLUMNS,
    PAIRS_COLUMNS,
    PAIRS_EXTRA_COLUMNS,
    PROJECT_FILE,
    TRL_COLUMNS,
    TRL_EXTRA_COLUMNS,
    VOTES_COLUMNS,
)
from prefdata.card import dataset_card
from prefdata.parquet_shards import IMAGE_GROUP_BYTES, ShardWriter
from prefdata.tables import CONFIG_DIRS, PreferenceTables, SplitReport, build_tables, config_splits
from ranker.errors import StudioError

PROJECT_FORMAT = "preference-studio-dataset"
FORMAT_VERSION = 2  # 2: images stored once, pairs by uid; 1: images embedded in pairs

_STR, _F64, _I64 = Value("string"), Value("float64"), Value("int64")
# The type of every column; the column names and their order come from common.contracts.
COLUMN_TYPES = {
    **dict.fromkeys(("image_0", "image_1", "image", "chosen", "rejected"), Image()),
    **dict.fromkeys(
        ("prompt", "image_0_uid", "image_1_uid", "best_image_uid", "uid", "labeler"), _STR
    ),
    **dict.fromkeys(("instruction", "project", "exclusion_reason", "context", "split"), _STR),
    **dict.fromkeys(("label_0", "label_1", "created_at", "response_ms"), _F64),
    **dict.fromkeys(("mu", "sigma", "conservative", "prior_mu", "prior_sigma"), _F64),
    **dict.fromkeys(("rank", "wins", "losses", "ties", "comparisons"), _I64),
    "excluded": Value("bool"),
}


def _features(columns: tuple[str, ...]) -> Features:
    return Features({c: COLUMN_TYPES[c] for c in columns})


PAIRS_FEATURES = _features(PAIRS_COLUMNS + PAIRS_EXTRA_COLUMNS)
EMBEDDED_PAIRS_FEATURES = _features(EMBEDDED_IMAGE_COLUMNS + PAIRS_COLUMNS + PAIRS_EXTRA_COLUMNS)
IMAGES_FEATURES = _features(IMAGES_COLUMNS + IMAGES_EXTRA_COLUMNS)
VOTES_FEATURES = _features(VOTES_COLUMNS)
TRL_FEATURES = _features(TRL_COLUMNS + TRL_EXTRA_COLUMNS)


# --- build ---------------------------------------------------------------------------------
@dataclass
class PreferenceDataset:
    """A project's dataset: the plain tables, with ``datasets`` views made on demand.

    Indexable like a ``DatasetDict``: ``ds["train"]``, ``ds["test"]`` (pairs by uid),
    ``ds["images"]`` (each image once; its cell points at the project file, decoded
    lazily), ``ds["votes"]``. No image bytes are held: writers read them per row.
    """

    tables: PreferenceTables
    _views: dict[str, Dataset] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Dataset:
        if key not in self.keys():
            raise KeyError(f"{key!r}: a preference dataset has {', '.join(self.keys())}")
        if key not in self._views:
            self._views[key] = self._view(key)
        return self._views[key]

    def keys(self) -> tuple[str, ...]:
        return ("train", "test", "images", "votes")

    def _view(self, key: str) -> Dataset:
        if key == "images":
            rows = [{**r, "image": self.image_ref(r["uid"])} for r in self.tables.images]
            return _from_rows(rows, IMAGES_FEATURES)
        if key == "votes":
            return _from_rows(self.tables.votes, VOTES_FEATURES)
        return _from_rows(self.tables.pairs[key], PAIRS_FEATURES)

    @property
    def report(self) -> SplitReport:
        return self.tables.report

    def card(self, repo_id: str | None = None, embedded: bool = False) -> str:
        return dataset_card(self.tables, repo_id, embedded=embedded)

    def image_ref(self, uid: str) -> dict:
        """An ``Image`` cell naming the project file (read when decoded)."""
        return {"bytes": None, "path": self.tables.files[uid].path}

    def image(self, uid: str) -> dict:
        """The ``Image`` cell with the bytes embedded, read from the file now."""
        f = self.tables.files[uid]
        try:
            return {"bytes": Path(f.path).read_bytes(), "path": f.name}
        except OSError as exc:
            raise StudioError(f"image {f.path} cannot be read ({exc.strerror or exc})") from exc


def build_preference_dataset(
    project, test_fraction: float = 0.1, seed: int = 0, labelers: str = "publish"
) -> PreferenceDataset:
    """A project's non-undone votes as a preference dataset (no files written).

    ``project`` is a :class:`ranker.service.ProjectSession`; ``labelers`` is
    ``"publish"``, ``"hash"`` or ``"drop"``. Every image file is checked now, so a
    missing one fails before anything is written; its bytes are read when written.
    """
    return dataset_from_tables(build_tables(project, test_fraction, seed, labelers))


def dataset_from_tables(tables: PreferenceTables) -> PreferenceDataset:
    missing = [
        f"{f.path} (not a file)" for f in tables.files.values() if not Path(f.path).is_file()
    ]
    if missing:
        shown = "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise StudioError(
            f"{len(missing)} image files of project {tables.project!r} cannot be read, so the "
            f"dataset cannot embed them: {shown}. Put them back or re-add the folder."
        )
    return PreferenceDataset(tables)


def _from_rows(rows: list[dict], features: Features) -> Dataset:
    return Dataset.from_dict({c: [r[c] for r in rows] for c in features}, features=features)


# --- the published folder --------------------------------------------------------------------
def save_parquet(ds: PreferenceDataset, folder: str | Path, repo_id: str | None = None) -> Path:
    """Write the dataset folder: Parquet shards per config, README card, project file.

    ``datasets.load_dataset(str(folder))`` loads the pairs, ``load_dataset(str(folder),
    "images")`` the images (the card shows the join by uid). An existing folder's
    tables are replaced. Memory stays bounded by a row group (about 1 MB of images).
    """
    folder = Path(folder)
    for sub in CONFIG_DIRS.values():
        shutil.rmtree(folder / sub, ignore_errors=True)
    splits = config_splits(ds.tables)
    for split in splits["default"]:
        with ShardWriter(folder / CONFIG_DIRS["default"], split, PAIRS_FEATURES) as out:
            for row in ds.tables.pairs[split]:
                out.add(row)
    with ShardWriter(
        folder / CONFIG_DIRS["images"], "train", IMAGES_FEATURES, group_bytes=IMAGE_GROUP_BYTES
    ) as out:
        for row in ds.tables.images:
            image = ds.image(row["uid"])
            out.add({**row, "image": image}, nbytes=len(image["bytes"]))
    with ShardWriter(folder / CONFIG_DIRS["votes"], "train", VOTES_FEATURES) as out:
        for row in ds.tables.votes:
            out.add(row)
    (folder / "README.md").write_text(ds.card(repo_id), encoding="utf-8")
    (folder / PROJECT_FILE).write_text(json.dumps(project_metadata(ds.tables), indent=1))
    return folder


def project_metadata(tables: PreferenceTables) -> dict:
    """What a re-import needs beyond the tables: name, instruction, settings, split."""
    r = tables.report
    return {
        "format": PROJECT_FORMAT,
        "version": FORMAT_VERSION,
        "project": tables.project,
        "instruction": tables.instruction,
        "settings": tables.settings,
        "rating": tables.rating,
        "labelers": tables.labeler_policy,
        "split": {k: getattr(r, k) for k in r.__dataclass_fields__},
    }
