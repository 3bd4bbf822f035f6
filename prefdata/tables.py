"""A project's vote log as preference-dataset tables: pure, no ``datasets``, no Hub.

Three tables come out, all keyed by image uid (the adapter in :mod:`prefdata.hub`
attaches the image bytes):

- ``pairs`` (train/test): the non-undone votes whose two images fall in the same
  split, Pick-a-Pic style (``label_0``/``label_1`` 1/0, a tie 0.5/0.5).
- ``images``: every image with its rating, counts, exclusion, context and split.
- ``votes``: the whole log in order, mixed pairs included, so a re-import replays it.

The split by image (and its cost) is :mod:`prefdata.split`.

Example:
    >>> tables = build_tables(project, test_fraction=0.1, seed=0)   # doctest: +SKIP
    >>> tables.report.summary()                                      # doctest: +SKIP
    '412 train pairs, 6 test pairs (72 train / 8 test images); 81 mixed pairs left out'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from common.contracts import (
    LABELER_POLICIES,
    LEFT,
    OUTCOMES,
    RIGHT,
    TIE,
    UNVOTED_SPLIT,
)
from prefdata.split import (
    USABLE_TEST_PAIRS,
    SplitReport,
    choose_split,
    pair_split,
)
from ranker.errors import StudioError


@dataclass(frozen=True)
class ImageFile:
    """Where an image's bytes are read from when the adapter embeds them."""

    path: str
    name: str


@dataclass
class PreferenceTables:
    """The dataset as plain rows; ``files`` says where each uid's bytes are."""

    project: str
    instruction: str
    settings: dict
    rating: dict
    labeler_policy: str
    labelers: list[str]
    pairs: dict[str, list[dict]]
    images: list[dict]
    votes: list[dict]
    report: SplitReport
    files: dict[str, ImageFile] = field(default_factory=dict)


# --- labels and labelers -------------------------------------------------------------
def outcome_labels(outcome: str) -> tuple[float, float]:
    """(label_0, label_1) for an outcome seen from the pair as shown; a tie is 0.5/0.5."""
    if outcome not in OUTCOMES:
        raise StudioError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    return {LEFT: (1.0, 0.0), RIGHT: (0.0, 1.0), TIE: (0.5, 0.5)}[outcome]


def labels_outcome(label_0: float, label_1: float) -> str:
    """The outcome a pair of labels means: the higher label wins, equal labels tie."""
    if label_0 > label_1:
        return LEFT
    if label_1 > label_0:
        return RIGHT
    return TIE


def labeler_mapper(policy: str, salt: str) -> Callable[[str], str | None]:
    """How labeler names are published: as they are, hashed (salted by ``salt``), or not.

    A hash keeps "same person" visible across rows without the name; it is a
    pseudonym, not anonymity (someone who guesses a name can check the guess).
    """
    if policy not in LABELER_POLICIES:
        raise StudioError(f"labelers must be one of {', '.join(LABELER_POLICIES)}, not {policy!r}")
    if policy == "publish":
        return lambda name: name
    if policy == "drop":
        return lambda name: None

    def hashed(name: str) -> str:
        return "labeler-" + hashlib.sha256(f"{salt}\0{name}".encode()).hexdigest()[:12]

    return hashed


# --- the tables ------------------------------------------------------------------------
def build_tables(
    project,
    test_fraction: float = 0.1,
    seed: int = 0,
    labelers: str = "publish",
    min_test_pairs: int = USABLE_TEST_PAIRS,
) -> PreferenceTables:
    """Read a :class:`ranker.service.ProjectSession` into :class:`PreferenceTables`.

    ``min_test_pairs``: below it the test share is raised (:func:`choose_split`); 0 keeps
    the requested share whatever it keeps.
    """
    votes = project.votes()
    if not votes:
        raise StudioError(f"project {project.name!r} has no votes yet: nothing to publish")
    name_of = labeler_mapper(labelers, salt=project.name)
    chosen = choose_split(
        [(v.left_uid, v.right_uid) for v in votes],
        test_fraction,
        seed,
        usable=min_test_pairs,
        decisive=[v.outcome != TIE for v in votes],
    )
    test = chosen.test
    instruction = project.row.instruction
    pairs: dict[str, list[dict]] = {"train": [], "test": []}
    log, mixed, ties = [], 0, 0
    for v in votes:
        label_0, label_1 = outcome_labels(v.outcome)
        labeler = name_of(v.labeler)
        log.append(
            {
                "image_0_uid": v.left_uid,
                "image_1_uid": v.right_uid,
                "label_0": label_0,
                "label_1": label_1,
                "labeler": labeler,
                "created_at": float(v.created_at),
                "response_ms": v.response_ms,
            }
        )
        split = pair_split(v.left_uid, v.right_uid, test)
        if split is None:
            mixed += 1
            continue
        ties += v.outcome == TIE
        pairs[split].append(
            {
                "image_0_uid": v.left_uid,
                "image_1_uid": v.right_uid,
                "label_0": label_0,
                "label_1": label_1,
                "best_image_uid": None if v.outcome == TIE else v.winner_loser[0],
                "labeler": labeler,
                "created_at": float(v.created_at),
                "instruction": instruction,
                "project": project.name,
                "response_ms": v.response_ms,
            }
        )
    voted = {u for v in votes for u in (v.left_uid, v.right_uid)}
    images = _image_rows(project, voted, test)
    report = SplitReport(
        voted_images=len(voted),
        train_images=len(voted - test),
        test_images=len(test),
        unvoted_images=len(project.images) - len(voted),
        train_pairs=len(pairs["train"]),
        test_pairs=len(pairs["test"]),
        mixed_pairs=mixed,
        ties=ties,
        test_fraction=chosen.fraction,
        seed=seed,
        requested_fraction=test_fraction if chosen.fraction != test_fraction else None,
        requested_test_pairs=chosen.requested_test_pairs,
        decisive_test_pairs=sum(p["label_0"] != 0.5 for p in pairs["test"]),
    )
    names = sorted({r["labeler"] for r in log if r["labeler"] is not None})
    return PreferenceTables(
        project=project.name,
        instruction=instruction,
        settings=dict(project.row.settings),
        rating={k: getattr(project.rating_config, k) for k in _RATING_KEYS},
        labeler_policy=labelers,
        labelers=names,
        pairs=pairs,
        images=images,
        votes=log,
        report=report,
        files={img.uid: ImageFile(img.path, img.name) for img in project.images},
    )


_RATING_KEYS = ("mu", "sigma", "beta", "tau", "draw_probability")


def _image_rows(project, voted: set[str], test: frozenset[str]) -> list[dict]:
    board = {row["uid"]: row for row in project.leaderboard()}  # the default order
    rows = []
    for img in project.images:
        b = board[img.uid]
        split = UNVOTED_SPLIT if img.uid not in voted else "test" if img.uid in test else "train"
        rows.append(
            {
                "uid": img.uid,
                "rank": b["rank"],
                "mu": b["mu"],
                "sigma": b["sigma"],
                "conservative": b["conservative"],
                "wins": b["wins"],
                "losses": b["losses"],
                "ties": b["ties"],
                "comparisons": b["comparisons"],
                "excluded": bool(img.excluded),
                "exclusion_reason": img.exclusion_reason or "",
                "context": img.context,
                "split": split,
                "prior_mu": getattr(img, "prior_mu", None),
                "prior_sigma": getattr(img, "prior_sigma", None),
            }
        )
    return rows


# --- layout and card ---------------------------------------------------------------------
# Folder of each table in the dataset repo; every folder is one `datasets` config.
CONFIG_DIRS = {"default": "data", "images": "images", "votes": "votes"}


def table_files(config: str, split: str) -> str:
    """The glob of one table's Parquet shards, relative to the dataset folder."""
    return f"{CONFIG_DIRS[config]}/{split}-*.parquet"


def config_splits(tables: PreferenceTables) -> dict[str, list[str]]:
    """The non-empty splits of each config (an empty split would not load)."""
    pairs = [s for s in ("train", "test") if tables.pairs[s]]
    return {"default": pairs, "images": ["train"], "votes": ["train"]}


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
