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

import heapq
from itertools import chain
from pathlib import Path

from common.contracts import PICKAPIC_IMAGE_COLUMNS, TRL_COLUMNS
from common.images import ImageReadError
from prefdata.imported import ImageWriter, ImportedVote, image_value, pair_vote
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
BATCH_ROWS = 16  # rows per Parquet batch: a batch of image rows stays a few MB


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


def _split_order(path: Path) -> tuple[int, str]:
    stem = path.name.split("-")[0].split(".")[0]
    rank = {"train": 0, "validation": 1, "valid": 1, "dev": 1, "test": 2}.get(stem, 3)
    return rank, str(path)


def pair_files(folder: Path) -> list[Path]:
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
                vote = pair_vote(record, images, labels, writer, path.parent, f"{where} row {row}")
                row += 1
                (bad if isinstance(vote, str) else votes).append(vote)
        rows += row
        per_file.append(votes)
    timed = all(v.created_at is not None for votes in per_file for v in votes)
    merged = heapq.merge(*per_file, key=lambda v: v.created_at) if timed else chain(*per_file)
    return layout_name, list(merged), rows, bad, hints


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
