"""What every import reader produces: images decoded once and written, votes by uid.

:class:`ImageWriter` decodes each distinct image once (:func:`common.images.decode`)
and writes it as ``images_dir/<uid><ext>``. A cell may name an image file instead of
holding its bytes: :func:`prefdata.parquet_rows.cell_bytes` is the one place such a
path is resolved, through the writer's ``resolve_path`` (by default
:func:`inside_dataset`, the path gate: files inside the table's or JSON file's folder
only), so the gate applies to every format at once. :func:`pair_vote` turns one row of any format into an :class:`ImportedVote`, or
the reason it is left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from common.images import ImageReadError, decode
from common.paths import PathRefused, ResolvePath, gate
from prefdata.parquet_rows import cell_bytes
from prefdata.tables import labels_outcome
from ranker.intake import ImageInfo, content_uid

FORMAT_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
}


@dataclass(frozen=True)
class ImportedImage(ImageInfo):
    """An intake record (the written file's facts) plus the state a dataset carries."""

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
    """Bytes and file name of a cell: Image struct, raw bytes, or a path (relative to ``base``,
    through the writer's ``resolve_path``): :func:`prefdata.parquet_rows.cell_bytes`."""
    return cell_bytes(value, base, writer.resolve_path)


def epoch(value) -> float | None:
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
            return epoch(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def pair_vote(record, images, labels, writer, base, where) -> ImportedVote | str:
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
        epoch(record.get("created_at")),
        record.get("response_ms"),
    )
