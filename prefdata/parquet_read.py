"""Our Parquet layout and the other pair tables: which files, which columns, which rows.

The one reader of these tables, used by import and by training alike. Our own layout
stores each image once (``images/*.parquet``: uid, image, state) and the pairs by uid
(``data/{train,test}-*.parquet``), with the vote log beside them (``votes/``); older
exports and Pick-a-Pic embed the images in every pair row; TRL names them
chosen/rejected. The pair layout is found from the columns (:data:`PAIR_LAYOUTS`).
Files are found by :func:`pair_files` and :func:`image_files`, rows are read by
:func:`prefdata.parquet_rows.rows`: import takes each image cell's value, a few rows
at a time, and writes it once (:class:`prefdata.imported.ImageWriter`; rows whose
images do not decode, or that hold no preference, are reported by row and left out);
training takes a lazy :class:`prefdata.parquet_rows.ParquetCell` instead, so memory is
bounded by a batch or a row group, never by a table.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from itertools import chain
from pathlib import Path

from common.contracts import PICKAPIC_IMAGE_COLUMNS, TRL_COLUMNS
from common.images import ImageReadError
from prefdata.imported import ImageWriter, ImportedVote, image_value, pair_vote
from prefdata.parquet_rows import BATCH_ROWS, column_names, rows
from prefdata.tables import CONFIG_DIRS, labels_outcome
from ranker.errors import ImportFormatError

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
# Columns of our images table beyond uid and image that import restores.
IMAGE_STATE_COLUMNS = ("context", "excluded", "exclusion_reason", "prior_mu", "prior_sigma")
SPLIT_ORDER = {"train": 0, "validation": 1, "valid": 1, "dev": 1, "test": 2}


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


def split_of(path: Path, folder: Path) -> str | None:
    """The split a pair file below ``folder`` holds, from its name
    (``train-00000-of-00001.parquet``) or a folder below ``folder`` (``train/0000.parquet``,
    ``default/partial-train/0000.parquet``); None when neither says."""
    below = path.parent.relative_to(folder).parts
    for split in SPLIT_ORDER:
        if path.name.startswith(split) or (below and split in below[-1]):
            return split
    return None


def pair_files(folder: Path) -> list[Path]:
    """The pair tables under ``folder`` (not the images or votes tables, nor hidden
    folders such as a download cache), train first, then validation, then test."""
    skip = {CONFIG_DIRS["images"], CONFIG_DIRS["votes"]}
    files = [
        p
        for p in folder.rglob("*.parquet")
        if not (set(p.relative_to(folder).parts[:-1]) & skip)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: (SPLIT_ORDER.get(split_of(p, folder) or "", 3), str(p)))


def image_files(folder: Path) -> list[Path]:
    """The shards of our images table that hold images (a uid and an image column)."""
    shards = sorted((folder / CONFIG_DIRS["images"]).glob("*.parquet"))
    return [p for p in shards if {"uid", "image"} <= set(column_names(p))]


def read_pairs_parquet(
    files: list[Path], writer: ImageWriter, base: Path
) -> tuple[str, list[ImportedVote], int, list[str], dict]:
    """Votes from pair tables, file by file in batches; bad rows reported and skipped.

    Each file keeps its row order; several files (splits) are merged by ``created_at``
    when every row has one, else read one after the other. Also returns the first
    ``instruction`` and ``project`` values found, as hints for a new project.
    """
    per_file, bad, n_rows, layout_name, hints = [], [], 0, "", {}
    for path in files:
        where = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
        names = column_names(path)
        layout_name, images, labels = pair_layout(names, where)
        extra = [c for c in OPTIONAL_COLUMNS if c in names]
        votes, row = [], 0
        for r in rows(path, list(images + labels) + extra, batch_rows=BATCH_ROWS):
            record = r.values
            for hint in ("instruction", "project"):
                if record.get(hint) and hint not in hints:
                    hints[hint] = record[hint]
            vote = pair_vote(record, images, labels, writer, path.parent, f"{where} row {row}")
            row += 1
            (bad if isinstance(vote, str) else votes).append(vote)
        n_rows += row
        per_file.append(votes)
    timed = all(v.created_at is not None for votes in per_file for v in votes)
    merged = heapq.merge(*per_file, key=lambda v: v.created_at) if timed else chain(*per_file)
    return layout_name, list(merged), n_rows, bad, hints


def read_image_table(folder: Path, writer: ImageWriter) -> list[str]:
    """Our ``images`` table: each image (with its state) written once, in batches.

    Fills ``writer.by_uid`` (the table's uid -> ours) for the pairs and the vote log.
    """
    bad = []
    for path in image_files(folder):
        names = column_names(path)
        state = [c for c in IMAGE_STATE_COLUMNS if c in names]
        for i, row in enumerate(rows(path, ["uid", "image", *state], batch_rows=BATCH_ROWS)):
            r, where = row.values, f"images/{path.name} row {i}"
            try:
                data, name = image_value(r["image"], path.parent, writer)
                uid = writer.add(data, name, f"{where} image")
            except (ImageReadError, ValueError) as exc:
                bad.append(f"{where} image: {getattr(exc, 'reason', exc)}")
                continue
            writer.by_uid[r["uid"]] = uid
            writer.images[uid] = replace(
                writer.images[uid],
                context=r.get("context"),
                excluded=bool(r.get("excluded")),
                exclusion_reason=r.get("exclusion_reason") or None,
                prior_mu=r.get("prior_mu"),
                prior_sigma=r.get("prior_sigma"),
            )
    return bad


def read_log_tables(folder: Path, writer: ImageWriter) -> tuple[list[ImportedVote], list[str]]:
    """Our ``votes`` + ``images`` tables: images (with their state) first, then the log."""
    bad = read_image_table(folder, writer)
    by_old_uid = writer.by_uid
    votes = []
    for path in sorted((folder / CONFIG_DIRS["votes"]).glob("*.parquet")):
        for i, row in enumerate(rows(path, column_names(path), batch_rows=10_000)):
            r, where = row.values, f"votes/{path.name} row {i}"
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
