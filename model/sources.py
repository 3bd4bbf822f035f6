"""Where images to score come from: a folder, a file list, or a (streamed) Hub dataset.

Every source is cut into *chunks* with stable keys, so that many processes (and
their loader workers) can split the work without talking to each other, and a rerun
can skip the chunks already written. A chunk is owned by exactly one worker of one
process: ``owns(unit)`` decides, where a unit is a chunk number (folders, lists and
single-file datasets) or a data-file shard (Hub datasets with enough shards, so each
worker downloads only its own files).

Listing a folder or reading a list is cheap next to decoding, so each worker walks
the listing itself and keeps only its chunks: nothing is held in memory beyond one
chunk, whatever the input size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from common.paths import inside
from model.scoring import Item

IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".avif",
        ".jp2",
        ".ppm",
        ".pgm",
        ".tga",
        ".ico",
        ".jfif",
    ]
)
HUB_PREFIX = "hf://datasets/"

# (key, items): key is stable across runs; "-last" marks a shard's final chunk.
Chunk = tuple[str, list[Item]]
Owns = Callable[[int], bool]


# A ranking folder's context sidecars (``ranker.intake.CONTEXT_FILES``): part of the
# folder's format, not images the user forgot, so scoring a ranked folder reports none.
SIDECAR_FILES = frozenset({"context.txt", "context.json"})


def walk_files(root: Path, images_only: bool = False) -> Iterator[str]:
    """Every regular file under root, in a stable sorted order; hidden entries and the
    context sidecars (``SIDECAR_FILES``) skipped.

    Other non-image files are kept unless ``images_only``: the scorer then reports each
    one by name instead of dropping it unseen.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in SIDECAR_FILES:
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from walk_files(Path(entry.path), images_only)
        elif entry.is_file() and (
            not images_only or os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
        ):
            if entry.is_symlink() and inside(entry.path, [root]) is None:
                continue  # a link out of the folder: the path gate refuses it
            yield entry.path


def _chunks(
    items: Iterable[Item], chunk_size: int, owns: Owns, skip: frozenset[str]
) -> Iterator[Chunk]:
    """Cut a stream into numbered chunks; build only the owned, not yet done ones."""
    current: list[Item] = []
    index = -1
    for i, item in enumerate(items):
        c = i // chunk_size
        if c != index:
            if current:
                yield f"{index:08d}", current
            index, current = c, []
            keep = owns(c) and f"{c:08d}" not in skip
        if keep:
            current.append(item)
    if current:
        yield f"{index:08d}", current


@dataclass
class FolderSource:
    """All files under a folder (recursively), in sorted order."""

    root: Path
    images_only: bool = False

    def describe(self) -> str:
        return f"folder:{self.root}"

    def units(self) -> None:
        return None

    def iter_chunks(
        self, chunk_size: int, owns: Owns, skip: frozenset[str] = frozenset()
    ) -> Iterator[Chunk]:
        return _chunks(walk_files(self.root, self.images_only), chunk_size, owns, skip)


@dataclass
class ListSource:
    """A text file with one image path per line (relative paths: next to the list)."""

    path: Path

    def describe(self) -> str:
        return f"list:{self.path}"

    def units(self) -> None:
        return None

    def _paths(self) -> Iterator[str]:
        base = self.path.parent
        with open(self.path, encoding="utf-8-sig") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#"):
                    p = Path(line).expanduser()
                    yield str(p if p.is_absolute() else base / p)

    def iter_chunks(
        self, chunk_size: int, owns: Owns, skip: frozenset[str] = frozenset()
    ) -> Iterator[Chunk]:
        return _chunks(self._paths(), chunk_size, owns, skip)


@dataclass
class HubSource:
    """A Hub (or local) image dataset, streamed; images stay encoded until a worker decodes them.

    With at least as many data files as workers overall, each worker streams only its
    own files (unit = file shard); otherwise every worker streams the rows and keeps
    its chunks (unit = chunk).
    """

    name: str
    split: str = "train"
    image_column: str | None = None
    id_column: str | None = None
    config: str | None = None
    total_workers: int = 1

    def describe(self) -> str:
        return f"dataset:{self.name}:{self.config or ''}:{self.split}"

    def _load(self):
        from datasets import load_dataset

        ds = load_dataset(self.name, self.config, split=self.split, streaming=True)
        column = self.image_column or _image_column(ds.features)
        if column is None:
            raise ValueError(
                f"dataset {self.name!r} has no Image column; name one with --image-column "
                f"(columns: {list(ds.features or {})})"
            )
        return ds.decode(False), column

    def units(self) -> int | None:
        ds, _ = self._load()
        return ds.n_shards if ds.n_shards >= self.total_workers else None

    def _rows(self, ds, column: str, prefix: str) -> Iterator[Item]:
        # ``iter(batch_size=)``, not ``for row in ds``: inside a DataLoader worker plain
        # iteration would split the data files among workers a second time.
        i = 0
        for batch in ds.iter(batch_size=256):
            ids = batch[self.id_column] if self.id_column else None
            for k, image in enumerate(batch[column]):
                data = image.get("bytes") if isinstance(image, dict) else image
                if data is None and isinstance(image, dict) and image.get("path"):
                    data = _read_bytes(image["path"])
                yield (str(ids[k]) if ids is not None else f"{prefix}{i}", data)
                i += 1

    def iter_chunks(
        self, chunk_size: int, owns: Owns, skip: frozenset[str] = frozenset()
    ) -> Iterator[Chunk]:
        ds, column = self._load()
        if ds.n_shards < self.total_workers:
            yield from _chunks(self._rows(ds, column, f"{self.split}/"), chunk_size, owns, skip)
            return
        for s in range(ds.n_shards):
            if not owns(s) or f"{s:05d}-complete" in skip:
                continue
            shard = ds.shard(num_shards=ds.n_shards, index=s, contiguous=True)
            rows = _batched(self._rows(shard, column, f"{self.split}/{s}/"), chunk_size)
            pending: tuple[str, list[Item]] | None = None
            for k, chunk in enumerate(rows):
                if pending is not None and pending[0] not in skip:
                    yield pending
                pending = (f"{s:05d}-{k:06d}", chunk)
            if pending is not None and pending[0] + "-last" not in skip:
                yield pending[0] + "-last", pending[1]


def _batched(items: Iterable[Item], n: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _read_bytes(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _image_column(features) -> str | None:
    from datasets import Image

    for name, feature in (features or {}).items():
        if isinstance(feature, Image):
            return name
    return None


def open_source(
    spec: str,
    *,
    images_only: bool = False,
    dataset: bool = False,
    split: str = "train",
    image_column: str | None = None,
    id_column: str | None = None,
    config: str | None = None,
    total_workers: int = 1,
) -> FolderSource | ListSource | HubSource:
    """A folder, a text list of paths, or a dataset (``hf://datasets/<id>``, ``owner/name``,
    or a local dataset folder with ``dataset=True``)."""
    hub = dict(split=split, image_column=image_column, id_column=id_column, config=config)
    path = Path(spec).expanduser()
    if spec.startswith(HUB_PREFIX):
        return HubSource(spec[len(HUB_PREFIX) :], total_workers=total_workers, **hub)
    if dataset:
        return HubSource(spec, total_workers=total_workers, **hub)
    if path.is_dir():
        return FolderSource(path, images_only=images_only)
    if path.is_file():
        return ListSource(path)
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return HubSource(spec, total_workers=total_workers, **hub)
    raise FileNotFoundError(f"input {spec!r} is not a folder, a file list or a Hub dataset id")
