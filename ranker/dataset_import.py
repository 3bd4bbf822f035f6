"""Load a preference dataset into a project: ours, Pick-a-Pic, TRL, or JoyQuality JSON.

Sources: a Hub dataset repo id, a local folder of Parquet files (our export or any
other), one Parquet file, a zip of either, or JoyQuality's JSON. The layout is found
from the columns:

- our export: ``votes`` + ``images`` tables (the exact log, replayed in order), else
- pairs with ``image_0``/``image_1`` or ``jpg_0``/``jpg_1`` and ``label_0``/``label_1``
  (ours, Pick-a-Pic), or ``chosen``/``rejected`` (TRL: the first wins), or
- ``{"train": [[winner, loser, 1], ...], "test": [...]}`` (JoyQuality).

Every image is decoded before its file is written, and the project only after every
row is read; rows whose images do not decode (or that hold no preference) are
reported by row and left out. Image files are written into ``images_dir`` named by
uid. A new project gets the dataset's settings, exclusions and pre-ranking, so it
replays to the same ratings; importing into an existing project appends only the
votes it does not have yet (same pair, outcome and time), so an export taken on
another machine resumes where that machine stopped.

Example:
    >>> report = import_dataset(studio, "user/my-prefs", images_dir=Path("uploads/imported"))
    ...                                                             # doctest: +SKIP
    >>> report.summary()                                             # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ranker.dataset_readers import ImportedImage, load_source
from ranker.errors import StudioError
from ranker.store import ImageRow, NewVote

IMPORT_SOURCE = "import"


@dataclass
class ImportReport:
    """What an import did; ``bad_rows`` names every row left out and why."""

    project: str
    layout: str
    rows: int = 0
    votes_added: int = 0
    votes_present: int = 0
    images_added: int = 0
    bad_rows: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"project {self.project!r} ({self.layout}): {self.votes_added} votes added"
            + (f", {self.votes_present} already there" if self.votes_present else "")
            + f", {self.images_added} new images, {len(self.bad_rows)} rows left out"
        ]
        lines += [f"  {row}" for row in self.bad_rows[:50]]
        if len(self.bad_rows) > 50:
            lines.append(f"  ... and {len(self.bad_rows) - 50} more")
        return "\n".join(lines)


# --- into a project ---------------------------------------------------------------------------
def import_dataset(
    studio,
    source: str | Path,
    *,
    images_dir: str | Path,
    project: str | None = None,
    instruction: str | None = None,
    labeler: str = IMPORT_SOURCE,
    token: str | None = None,
    split: str | None = None,
) -> ImportReport:
    """Import ``source`` into ``project`` (created if new; appended to, without repeats, if not).

    ``images_dir`` receives the image files (named by uid); ``labeler`` names votes
    whose dataset has no labeler; ``split`` limits a Hub download to one split.
    """
    loaded = load_source(source, Path(images_dir), token=token, split=split)
    if not loaded.votes:
        detail = "\n".join(loaded.bad_rows[:10])
        raise StudioError(f"no usable votes in {source}" + (f":\n{detail}" if detail else ""))
    name = (project or loaded.meta.get("project") or loaded.name_hint or "imported").strip()
    now = time.time()
    new_votes: list[NewVote] = [
        (
            None,
            v.left,
            v.right,
            v.outcome,
            v.labeler or labeler,
            now if v.created_at is None else float(v.created_at),
            v.response_ms,
            IMPORT_SOURCE,
        )
        for v in loaded.votes
    ]
    images = list(loaded.images.values())
    report = ImportReport(name, loaded.layout, rows=loaded.rows, bad_rows=loaded.bad_rows)
    existing = {p.name for p in studio.list_projects()}
    if name not in existing:
        create_project_from_log(
            studio.store,
            name,
            instruction or loaded.meta.get("instruction"),
            loaded.meta.get("settings") or {},
            images,
            new_votes,
        )
        report.images_added, report.votes_added = len(images), len(new_votes)
        studio.project(name)  # open it: a full replay of what was written
        return report
    session = studio.project(name)
    known = {img.uid for img in session.images}
    fresh = [img for img in images if img.uid not in known]
    intake = session.add_files([img.path for img in fresh])
    if intake.rejected:
        raise StudioError("imported images were rejected:\n" + intake.summary())
    for img in fresh:
        if img.excluded:
            session.set_excluded(img.uid, True, img.exclusion_reason)
    have = Counter(
        _vote_key(v.left_uid, v.right_uid, v.outcome, v.created_at) for v in session.votes()
    )
    todo = []
    for v in new_votes:
        key = _vote_key(v[1], v[2], v[3], v[5])
        if have[key]:
            have[key] -= 1
            report.votes_present += 1
        else:
            todo.append(v)
    session.record_votes(todo)
    report.images_added, report.votes_added = len(fresh), len(todo)
    return report


def _vote_key(left: str, right: str, outcome: str, created_at: float) -> tuple:
    # Labelers may have been hashed or dropped on export: match without them.
    return left, right, outcome, round(float(created_at), 6)


def create_project_from_log(
    store,
    name: str,
    instruction: str | None,
    settings: dict,
    images: list[ImportedImage],
    votes: list[NewVote],
    excluded_after: dict[str, int] | None = None,
    undone: set[int] | None = None,
) -> None:
    """Write a whole new project straight into the store, before any session opens it.

    ``excluded_after`` places each exclusion after that many votes (so Image Ranker
    exports interleave removals as they happened); ``undone`` holds positions in
    ``votes`` that were undone. Opening the project afterwards replays it exactly.
    """
    from ranker.ratings import RatingConfig

    RatingConfig.from_settings(settings)  # fail before writing anything
    row = store.create_project(name, instruction, settings)
    store.add_images(
        row.id,
        [ImageRow.from_info(img, i) for i, img in enumerate(images)],
    )
    priors = {
        img.uid: (img.prior_mu, img.prior_sigma)
        for img in images
        if img.prior_mu is not None and img.prior_sigma is not None
    }
    if priors:
        store.set_priors(row.id, priors)
    excluded_after = excluded_after or {}
    points = {excluded_after.get(img.uid, len(votes)) for img in images if img.excluded}
    ids, start = [], 0
    for point in sorted(points | {len(votes)}):
        if point > start:
            ids += store.add_votes(row.id, votes[start:point])
            start = point
        for img in images:
            if img.excluded and excluded_after.get(img.uid, len(votes)) == point:
                store.set_excluded(row.id, img.uid, True, img.exclusion_reason)
    for position in sorted(undone or ()):
        store.mark_undone(ids[position])
