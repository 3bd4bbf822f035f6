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
votes it does not have yet, so an export taken on another machine resumes where that
machine stopped and importing the same file twice adds nothing. Timed votes (ours,
Pick-a-Pic) match on pair, outcome and time; untimed ones (TRL, JoyQuality) can only be
counted: see :func:`votes_to_append`.

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

from common.contracts import LEFT, TIE
from prefdata.imported import ImportedImage, ImportedVote
from prefdata.load import load_source
from ranker.errors import StudioError
from ranker.schema import VoteRow
from ranker.store import ImageRow, NewVote

IMPORT_SOURCE = "import"


@dataclass
class ImportReport:
    """What an import did; ``votes_present`` counts the votes skipped as already in the
    project, ``bad_rows`` names every row left out and why."""

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
    append = votes_to_append(session.votes(), loaded.votes)
    todo = [new_votes[i] for i in append]
    session.record_votes(todo)
    report.images_added, report.votes_added = len(fresh), len(todo)
    report.votes_present = len(new_votes) - len(todo)
    return report


def votes_to_append(existing: list[VoteRow], incoming: list[ImportedVote]) -> list[int]:
    """Positions in ``incoming`` of the votes a project holding ``existing`` lacks, in order.

    A timed vote is present when an existing vote has the same pair as shown, outcome
    and time (labelers may have been hashed or dropped on export, so they are not
    compared). An untimed vote (TRL, JoyQuality) has nothing that tells it apart from an
    equal one, so equal votes are counted: per (unordered pair, winner or tie, labeler
    when the file names one), a project holding k of them and a file holding m get the
    last max(0, m - k) in file order. Existing votes matched once are not counted again:
    timed matches go first, then untimed votes that name a labeler, then the rest.

    Example: a project holding one "a beats b" and a JoyQuality file with the rows
    ``[b, a, 0]``, ``[a, b, 1]``, ``[c, a, 1]`` gets the last two (positions 1 and 2).
    """
    have = Counter(_timed_key(v.left_uid, v.right_uid, v.outcome, v.created_at) for v in existing)
    keep, matched, untimed = [], Counter(), {}
    for i, v in enumerate(incoming):
        if v.created_at is None:
            key = (_untimed_key(v.left, v.right, v.outcome), v.labeler)
            untimed.setdefault(key, []).append(i)
            continue
        key = _timed_key(v.left, v.right, v.outcome, v.created_at)
        if have[key] > matched[key]:
            matched[key] += 1  # the first ones in file order are the ones present
        else:
            keep.append(i)
    if untimed:
        keep += _untimed_to_append(existing, untimed, matched)
    return sorted(keep)


def _untimed_to_append(
    existing: list[VoteRow], groups: dict[tuple, list[int]], matched: Counter
) -> list[int]:
    # Count the existing votes no timed vote matched, by labeler and by any labeler.
    by_labeler, any_labeler = Counter(), Counter()
    for v in existing:
        key = _timed_key(v.left_uid, v.right_uid, v.outcome, v.created_at)
        if matched[key]:
            matched[key] -= 1
            continue
        pair = _untimed_key(v.left_uid, v.right_uid, v.outcome)
        by_labeler[pair, v.labeler] += 1
        any_labeler[pair] += 1
    keep = []
    # Named labelers first, so an existing vote they match is not counted again below.
    for (pair, labeler), positions in sorted(groups.items(), key=lambda g: g[0][1] is None):
        present = min(
            by_labeler[pair, labeler] if labeler is not None else any_labeler[pair],
            len(positions),
        )
        any_labeler[pair] -= present
        keep += positions[present:]
    return keep


def _timed_key(left: str, right: str, outcome: str, created_at: float) -> tuple:
    return left, right, outcome, round(float(created_at), 6)


def _untimed_key(left: str, right: str, outcome: str) -> tuple[str, str, str]:
    # The pair unordered and who won: TRL and JoyQuality list the winner first.
    winner = TIE if outcome == TIE else left if outcome == LEFT else right
    return *sorted((left, right)), winner


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
