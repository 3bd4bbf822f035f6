"""Reading preference datasets: our export, Pick-a-Pic, TRL and JoyQuality JSON.

The layout is found from the columns (see :data:`PAIR_LAYOUTS`); each image is
decoded once, then written as ``images_dir/<uid><ext>``; rows whose images do not
decode, or that hold no preference, are reported by row and left out. Parquet is
read in small batches, so memory is bounded by a batch, never by a table: our own
layout stores each image once (``images`` table) and pairs by uid; older exports and
Pick-a-Pic embed the images in every pair row; both are read.

A cell may name an image file instead of holding its bytes: :meth:`ImageWriter.read_path`
is the one place such a path is resolved (``resolve_path``; by default
:func:`inside_dataset`, the path gate: files inside the table's or JSON file's folder
only), so the gate applies to every format at once.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import tempfile
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from common import joyquality_json as jq
from common.contracts import PICKAPIC_IMAGE_COLUMNS, PROJECT_FILE, TRL_COLUMNS
from common.images import ImageReadError, decode
from common.joyquality_json import ResolvePath
from common.paths import PathRefused, gate
from ranker.dataset import CONFIG_DIRS, labels_outcome
from ranker.errors import ImportFormatError
from ranker.intake import content_uid, extract_zip

FORMAT_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
}
# Columns read when present: who, when, how long, and hints for a new project.
OPTIONAL_COLUMNS = (
    "labeler",
    "user_id",
    "created_at",
    "response_ms",
    "instruction",
    "project",
    "has_label",
)
UID_LAYOUT = "image_0_uid/image_1_uid with an images table"
# Accepted pair layouts: (name, image columns, label columns); the first one present wins.
PAIR_LAYOUTS = (
    ("image_0/image_1 with label_0/label_1", ("image_0", "image_1"), ("label_0", "label_1")),
    (
        "Pick-a-Pic (jpg_0/jpg_1 with label_0/label_1)",
        PICKAPIC_IMAGE_COLUMNS,
        ("label_0", "label_1"),
    ),
    ("TRL (chosen/rejected)", TRL_COLUMNS, ()),
    # Ours: pairs by uid, the images once in the images table beside them.
    (UID_LAYOUT, ("image_0_uid", "image_1_uid"), ("label_0", "label_1")),
)
BATCH_ROWS = 16  # rows per Parquet batch: a batch of image rows stays a few MB


@dataclass
class ImportedImage:
    uid: str
    path: str
    name: str
    width: int
    height: int
    format: str
    bytes: int
    context: str | None = None
    excluded: bool = False
    exclusion_reason: str | None = None
    prior_mu: float | None = None
    prior_sigma: float | None = None


@dataclass
class ImportedVote:
    left: str
    right: str
    outcome: str
    labeler: str | None
    created_at: float | None
    response_ms: float | None = None


def inside_dataset(cell: str, base: Path) -> str:
    """The path gate for image paths in cells: only files inside the dataset's own folder
    (``base``), symlinks followed, so an uploaded table cannot pull in server files."""
    try:
        return str(gate(cell, [base], owner=False, kind="file", base=base))
    except PathRefused:
        raise ValueError(
            f"image path {str(cell)[:200]!r} is not a file inside the dataset"
        ) from None


class ImageWriter:
    """Decodes each distinct image once and writes it as ``images_dir/<uid><ext>``."""

    def __init__(self, images_dir: Path, resolve_path: ResolvePath = inside_dataset) -> None:
        self.dir = Path(images_dir)
        self.images: dict[str, ImportedImage] = {}
        self.errors: dict[str, str] = {}
        self.resolve_path = resolve_path
        self.by_uid: dict[str, str] = {}  # a table's image uid -> our uid (UID_LAYOUT)

    def read_path(self, path: str, base: Path) -> bytes:
        """The bytes of an image a cell names by path; a refused or unreadable path is a
        ``ValueError`` (the row is reported and left out)."""
        resolved = Path(self.resolve_path(path, base))
        try:
            return resolved.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {resolved} ({exc.strerror or exc})") from exc

    def add(self, data: bytes, name: str | None, label: str) -> str:
        """The uid of ``data``; raises ImageReadError(label, reason) if it does not decode."""
        uid = content_uid(data) if data else ""
        if uid in self.images:
            return uid
        if uid in self.errors:
            raise ImageReadError(label, self.errors[uid])
        try:
            img, fmt = decode(data, label)
        except ImageReadError as exc:
            if uid:
                self.errors[uid] = exc.reason
            raise
        suffix = FORMAT_SUFFIX.get(fmt) or Path(name or "").suffix.lower() or ".img"
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{uid}{suffix}"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_bytes(data)
            tmp.replace(path)
        self.images[uid] = ImportedImage(
            uid,
            str(path.resolve()),
            Path(name).name if name else path.name,
            img.width,
            img.height,
            fmt,
            len(data),
        )
        return uid


# --- reading values --------------------------------------------------------------------------
def image_value(value, base: Path, writer: ImageWriter) -> tuple[bytes, str | None]:
    """Bytes and file name of a cell: Image struct, raw bytes, or a path (relative to ``base``)."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            return bytes(data), path
        if path:
            return writer.read_path(path, base), path
        raise ValueError("the image cell is empty")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), None
    if isinstance(value, str) and value:
        return writer.read_path(value, base), value
    raise ValueError(f"no image in this cell ({type(value).__name__})")


def _epoch(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return _epoch(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def pair_layout(columns: list[str], where: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The pair layout these columns follow; the error names the missing columns."""
    for layout in PAIR_LAYOUTS:
        if set(layout[1] + layout[2]) <= set(columns):
            return layout
    closest = min(PAIR_LAYOUTS, key=lambda lay: len(set(lay[1] + lay[2]) - set(columns)))
    missing = [c for c in closest[1] + closest[2] if c not in columns]
    accepted = "; ".join(name for name, _, _ in PAIR_LAYOUTS)
    raise ImportFormatError(
        f"{where} is not a preference table: it lacks the columns {', '.join(missing)} "
        f"(closest layout: {closest[0]}; it has {', '.join(columns) or 'no columns'}). "
        f"Accepted layouts: {accepted}."
    )


# --- sources -------------------------------------------------------------------------------
@dataclass
class Loaded:
    """Everything read from a source, images already validated and written."""

    layout: str
    votes: list[ImportedVote]
    images: dict[str, ImportedImage]
    meta: dict
    rows: int
    bad_rows: list[str]
    name_hint: str = ""


def _split_order(path: Path) -> tuple[int, str]:
    stem = path.name.split("-")[0].split(".")[0]
    rank = {"train": 0, "validation": 1, "valid": 1, "dev": 1, "test": 2}.get(stem, 3)
    return rank, str(path)


def _pair_files(folder: Path) -> list[Path]:
    skip = {CONFIG_DIRS["images"], CONFIG_DIRS["votes"]}
    files = [
        p
        for p in folder.rglob("*.parquet")
        if not (set(p.relative_to(folder).parts[:-1]) & skip)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=_split_order)


def read_pairs_parquet(
    files: list[Path], writer: ImageWriter, base: Path
) -> tuple[str, list[ImportedVote], int, list[str], dict]:
    """Votes from pair tables, file by file in batches; bad rows reported and skipped.

    Each file keeps its row order; several files (splits) are merged by ``created_at``
    when every row has one, else read one after the other. Also returns the first
    ``instruction`` and ``project`` values found, as hints for a new project.
    """
    import pyarrow.parquet as pq

    per_file, bad, rows, layout_name, hints = [], [], 0, "", {}
    for path in files:
        where = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
        pf = pq.ParquetFile(path)
        layout_name, images, labels = pair_layout(pf.schema_arrow.names, where)
        extra = [c for c in OPTIONAL_COLUMNS if c in pf.schema_arrow.names]
        votes, row = [], 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(images + labels) + extra):
            for record in batch.to_pylist():
                for hint in ("instruction", "project"):
                    if record.get(hint) and hint not in hints:
                        hints[hint] = record[hint]
                vote = _pair_vote(record, images, labels, writer, path.parent, f"{where} row {row}")
                row += 1
                (bad if isinstance(vote, str) else votes).append(vote)
        rows += row
        per_file.append(votes)
    timed = all(v.created_at is not None for votes in per_file for v in votes)
    merged = heapq.merge(*per_file, key=lambda v: v.created_at) if timed else chain(*per_file)
    return layout_name, list(merged), rows, bad, hints


def _pair_vote(record, images, labels, writer, base, where) -> ImportedVote | str:
    uids = []
    for col in images:
        if col.endswith("_uid"):  # UID_LAYOUT: the image was read from the images table
            uid = writer.by_uid.get(str(record[col]))
            if uid is None:
                return f"{where} {col}: image {record[col]} is not in the images table"
            uids.append(uid)
            continue
        try:
            data, name = image_value(record[col], base, writer)
            uids.append(writer.add(data, name, f"{where} {col}"))
        except ImageReadError as exc:
            return f"{where} {col}: {exc.reason}"
        except ValueError as exc:
            return f"{where} {col}: {exc}"
    if uids[0] == uids[1]:
        return f"{where}: both images are the same image"
    if labels:
        try:
            label_0, label_1 = float(record[labels[0]]), float(record[labels[1]])
        except (TypeError, ValueError):
            return f"{where}: labels {record[labels[0]]!r}, {record[labels[1]]!r} are not numbers"
        if label_0 == label_1 == 0 or record.get("has_label") is False:
            return f"{where}: no preference given (labels 0 and 0)"
        outcome = labels_outcome(label_0, label_1)
    else:
        outcome = "left"  # chosen is shown first and wins
    labeler = record.get("labeler")
    if labeler is None and record.get("user_id") is not None:
        labeler = f"user-{record['user_id']}"
    return ImportedVote(
        uids[0],
        uids[1],
        outcome,
        labeler,
        _epoch(record.get("created_at")),
        record.get("response_ms"),
    )


def read_image_table(folder: Path, writer: ImageWriter) -> list[str]:
    """Our ``images`` table: each image (with its state) written once, in batches.

    Fills ``writer.by_uid`` (the table's uid -> ours) for the pairs and the vote log.
    """
    import pyarrow.parquet as pq

    bad = []
    for path in sorted((folder / CONFIG_DIRS["images"]).glob("*.parquet")):
        pf, i = pq.ParquetFile(path), 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for r in batch.to_pylist():
                where, i = f"images/{path.name} row {i}", i + 1
                try:
                    data, name = image_value(r["image"], path.parent, writer)
                    uid = writer.add(data, name, f"{where} image")
                except (ImageReadError, ValueError) as exc:
                    bad.append(f"{where} image: {getattr(exc, 'reason', exc)}")
                    continue
                writer.by_uid[r["uid"]] = uid
                img = writer.images[uid]
                img.context = r.get("context")
                img.excluded = bool(r.get("excluded"))
                img.exclusion_reason = r.get("exclusion_reason") or None
                img.prior_mu, img.prior_sigma = r.get("prior_mu"), r.get("prior_sigma")
    return bad


def read_log_tables(folder: Path, writer: ImageWriter) -> tuple[list[ImportedVote], list[str]]:
    """Our ``votes`` + ``images`` tables: images (with their state) first, then the log."""
    import pyarrow.parquet as pq

    bad = read_image_table(folder, writer)
    by_old_uid = writer.by_uid
    votes = []
    for path in sorted((folder / CONFIG_DIRS["votes"]).glob("*.parquet")):
        pf, i = pq.ParquetFile(path), 0
        for batch in pf.iter_batches(batch_size=10_000):
            for r in batch.to_pylist():
                where, i = f"votes/{path.name} row {i}", i + 1
                left, right = by_old_uid.get(r["image_0_uid"]), by_old_uid.get(r["image_1_uid"])
                if left is None or right is None:
                    bad.append(f"{where}: an image of this vote was left out above")
                    continue
                votes.append(
                    ImportedVote(
                        left,
                        right,
                        labels_outcome(r["label_0"], r["label_1"]),
                        r.get("labeler"),
                        r.get("created_at"),
                        r.get("response_ms"),
                    )
                )
    return votes, bad


def read_joyquality(path: Path, writer: ImageWriter) -> tuple[list[ImportedVote], int, list[str]]:
    """JoyQuality's ``{"train": [[winner, loser, label], ...], "test": [...]}``, train first.

    Read by :mod:`common.joyquality_json`, the reader training uses too: label 1 means
    the first image won, -1 the second (upstream's meaning), 0.5 a tie; rows with any
    other label, or paths that cannot be read, are reported by row and left out.
    """
    try:
        doc = jq.read_document(path)
    except jq.JoyQualityFormatError as exc:
        raise ImportFormatError(str(exc)) from exc
    votes, bad, rows = [], [], 0
    for row in jq.iter_rows(doc, path.parent, writer.resolve_path):
        rows += 1
        if isinstance(row, jq.RowError):
            bad.append(str(row))
            continue
        record = {"a": row.first, "b": row.second, "l0": row.p_first, "l1": 1.0 - row.p_first}
        vote = _pair_vote(record, ("a", "b"), ("l0", "l1"), writer, path.parent, row.where)
        (bad if isinstance(vote, str) else votes).append(vote)
    return votes, rows, bad


def load_source(
    source: str | Path,
    images_dir: Path,
    *,
    token: str | None = None,
    split: str | None = None,
    resolve_path: ResolvePath = inside_dataset,
) -> Loaded:
    """Read any accepted source; a string that is not an existing path is a Hub repo id.

    ``resolve_path(cell, base)`` turns an image path found in a cell into the file to
    read (raise ``ValueError`` to refuse it; the row is reported and left out).
    """
    path = Path(source)
    writer = ImageWriter(images_dir, resolve_path)
    if not path.exists():
        from ranker.hub import download_dataset

        with tempfile.TemporaryDirectory(prefix="pstudio-import-") as tmp:
            folder = download_dataset(str(source), tmp, token=token, split=split)
            loaded = _load_folder(folder, writer)
        loaded.name_hint = str(source).rsplit("/", 1)[-1]
        return loaded
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="pstudio-import-") as tmp:
            loaded = _load_folder(extract_zip(path, Path(tmp)), writer)
    elif path.suffix.lower() == ".json":
        votes, rows, bad = read_joyquality(path, writer)
        loaded = Loaded("JoyQuality JSON", votes, writer.images, {}, rows, bad)
    elif path.is_dir():
        loaded = _load_folder(path, writer)
    elif path.suffix.lower() == ".parquet":
        layout, votes, rows, bad, hints = read_pairs_parquet([path], writer, path.parent)
        loaded = Loaded(layout, votes, writer.images, hints, rows, bad)
    else:
        raise ImportFormatError(
            f"{path.name}: import takes a Parquet file or folder, a zip of one, a JoyQuality "
            "JSON file, or a Hub dataset repo id"
        )
    loaded.name_hint = loaded.name_hint or path.stem
    return loaded


def _load_folder(folder: Path, writer: ImageWriter) -> Loaded:
    meta_file = folder / PROJECT_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    has_log = all(any((folder / CONFIG_DIRS[c]).glob("*.parquet")) for c in ("images", "votes"))
    if has_log:
        votes, bad = read_log_tables(folder, writer)
        rows = len(votes) + len(bad)
        loaded = Loaded("Preference Studio dataset", votes, writer.images, meta, rows, bad)
    else:
        files = _pair_files(folder)
        jsons = sorted(p for p in folder.rglob("*.json") if p.name != PROJECT_FILE)
        if not files and jsons:
            votes, rows, bad = read_joyquality(jsons[0], writer)
            loaded = Loaded("JoyQuality JSON", votes, writer.images, meta, rows, bad)
        elif not files:
            raise ImportFormatError(f"{folder.name} holds no Parquet or JoyQuality JSON files")
        else:
            image_bad = read_image_table(folder, writer)  # pairs by uid look images up here
            layout, votes, rows, bad, hints = read_pairs_parquet(files, writer, folder)
            loaded = Loaded(layout, votes, writer.images, {**hints, **meta}, rows, image_bad + bad)
    return loaded
