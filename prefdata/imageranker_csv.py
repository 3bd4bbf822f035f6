"""Image Ranker's CSV files: ``comparisons.csv`` read and written, ``rankings.csv`` written.

``comparisons.csv`` is imported row by row in file order, duplicates kept (Image
Ranker's own resume loses both, so its ratings change after a round trip). Paths are
matched exactly, else by file name when the folder moved. A ``None`` winner marks a
removed image and becomes an exclusion. Exports show paths relative to the images'
common folder (:func:`shown_paths`), never where the server keeps its files.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import defaultdict
from pathlib import Path

from common.contracts import (
    IR_COMPARISONS_HEADER,
    IR_RANKINGS_HEADER,
    IR_REMOVED_WINNER,
    LEFT,
    TIE,
)
from ranker.errors import ImportFormatError
from ranker.service import ProjectSession
from ranker.store import NewVote

IR_REMOVED_REASON = "removed in Image Ranker"


# --- Image Ranker --------------------------------------------------------------------
def read_ir_comparisons(text: str) -> list[tuple[str, str]]:
    """Parse ``comparisons.csv`` text (BOM allowed) into (winner, loser) rows in order."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows or tuple(c.strip() for c in rows[0]) != IR_COMPARISONS_HEADER:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise ImportFormatError(
            f"not an Image Ranker comparisons.csv: the header must be "
            f"{','.join(IR_COMPARISONS_HEADER)!r}, found {got!r}"
        )
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise ImportFormatError(
                f"comparisons.csv line {line}: expected 2 columns, got {len(row)}"
            )
        out.append((row[0].strip(), row[1].strip()))
    return out


def _matcher(project: ProjectSession):
    by_path = {img.path: img.uid for img in project.images}
    by_name: dict[str, list[str]] = defaultdict(list)
    for img in project.images:
        by_name[img.name].append(img.uid)

    def match(path: str) -> str | None:
        if path in by_path:
            return by_path[path]
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        candidates = by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    return match


def import_ir_comparisons(
    project: ProjectSession, text: str, labeler: str = "image-ranker"
) -> dict:
    """Append every row of an Image Ranker ``comparisons.csv`` to the project, in order.

    All rows must name images of the project (by path, or by unique file name); if
    any does not, nothing is imported and the error lists them.
    """
    rows = read_ir_comparisons(text)
    match = _matcher(project)
    unknown = sorted(
        {p for row in rows for p in row if p != IR_REMOVED_WINNER and match(p) is None}
    )
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ImportFormatError(
            f"{len(unknown)} paths in comparisons.csv match no image of project "
            f"{project.name!r}: {shown}. Add that folder to the project first."
        )
    now = time.time()
    votes: list[NewVote] = []
    counts = {"votes": 0, "excluded": 0}
    for winner, loser in rows + [(IR_REMOVED_WINNER, None)]:
        if winner != IR_REMOVED_WINNER:
            votes.append(
                (None, match(winner), match(loser), LEFT, labeler, now, None, "image-ranker")
            )
            continue
        # A removal lands between the votes around it, as in the file.
        project.record_votes(votes)
        counts["votes"] += len(votes)
        votes = []
        if loser is not None:
            project.set_excluded(match(loser), True, IR_REMOVED_REASON)
            counts["excluded"] += 1
    return counts


def shown_paths(project: ProjectSession) -> dict[str, str]:
    """Image path -> the path a CSV export shows: relative to the images' common folder,
    so no export carries where the server keeps its files (names stay unique)."""
    paths = [img.path for img in project.images]
    if not paths:
        return {}
    try:
        base = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:  # mixed drives or relative and absolute paths
        return {p: Path(p).name for p in paths}
    return {p: Path(os.path.relpath(p, base)).as_posix() for p in paths}


def export_ir_comparisons(project: ProjectSession) -> str:
    """``comparisons.csv`` in Image Ranker's columns; ties have no place there and are left out."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IR_COMPARISONS_HEADER)
    shown = shown_paths(project)
    removed = sorted(
        (img.excluded_after_vote or 0, shown[img.path]) for img in project.images if img.excluded
    )
    for vote in project.votes():
        while removed and removed[0][0] < vote.id:
            writer.writerow((IR_REMOVED_WINNER, removed.pop(0)[1]))
        if vote.outcome == TIE:
            continue
        winner, loser = vote.winner_loser
        writer.writerow((shown[project.image(winner).path], shown[project.image(loser).path]))
    for _, path in removed:
        writer.writerow((IR_REMOVED_WINNER, path))
    return out.getvalue()


def export_ir_rankings(project: ProjectSession) -> str:
    """``image_rankings.csv``: Image, ELO (mu), Uncertainty (sigma), Upvotes, Downvotes by mu.

    Image Ranker's own format keeps Image Ranker's meaning: rows ranked by TrueSkill mu
    (its "ELO" column), not by the default order of our other outputs."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IR_RANKINGS_HEADER)
    shown = shown_paths(project)
    for row in project.leaderboard(order="mu"):
        if row["excluded"]:
            continue
        writer.writerow(
            (
                shown.get(row["path"], Path(row["path"]).name),
                f"{row['mu']:.2f}",
                f"{row['sigma']:.2f}",
                row["wins"],
                row["losses"],
            )
        )
    return out.getvalue()
