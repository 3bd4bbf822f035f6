"""Per-labeler agreement with the leave-one-out consensus."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from ranker.agreement import leave_one_out_agreement


def vote(labeler: str, left: str, right: str, outcome: str, undone: bool = False):
    return SimpleNamespace(
        labeler=labeler, left_uid=left, right_uid=right, outcome=outcome, undone=undone
    )


def synthetic_project(
    seed: int, careful: int, random_shared: int, random_alone: int, shared: int = 10
) -> list[SimpleNamespace]:
    """Labelers ``a`` and ``b`` always prefer the lower image number; ``r`` flips a coin.

    All three vote on random pairs of the ``shared`` images (``careful`` votes each for
    ``a`` and ``b``, ``random_shared`` for ``r``); ``r`` also casts ``random_alone``
    votes on 150 images nobody else sees, where the consensus is his own choices.
    """
    rng = random.Random(seed)
    votes = []

    def cast(labeler: str, count: int, images: range, careful_: bool) -> None:
        for _ in range(count):
            i, j = rng.sample(images, 2)
            first = i < j if careful_ else rng.random() < 0.5
            votes.append(vote(labeler, f"img{i}", f"img{j}", "left" if first else "right"))

    cast("a", careful, range(shared), True)
    cast("b", careful, range(shared), True)
    cast("r", random_shared, range(shared), False)
    cast("r", random_alone, range(shared, shared + 150), False)
    rng.shuffle(votes)
    return votes


@pytest.mark.parametrize(
    ("random_shared", "random_alone"),
    [
        (150, 0),  # three equal labelers
        (450, 0),  # r cast 60% of the votes, all on shared images
        (150, 450),  # r cast 67%, most on images only he saw (old code: r agreed ~0.65)
    ],
    ids=["balanced", "random-majority", "random-majority-own-images"],
)
def test_agreement_separates_random_from_consistent_labelers(random_shared, random_alone):
    votes = synthetic_project(0, 150, random_shared, random_alone)
    agreement = leave_one_out_agreement(votes)
    assert agreement["a"] >= 0.8 and agreement["b"] >= 0.8
    assert abs(agreement["r"] - 0.5) <= 0.1


def test_agreement_never_counts_a_labelers_own_votes():
    # Each says the other is wrong; a consensus including one's own vote would side
    # with one of them.
    votes = [vote("x", "a", "b", "left"), vote("y", "a", "b", "right")]
    assert leave_one_out_agreement(votes) == {"x": 0.0, "y": 0.0}


def test_agreement_is_none_without_overlap():
    votes = [
        vote("x", "a", "b", "left"),
        vote("y", "a", "b", "left"),
        vote("x", "c", "d", "left"),
        vote("y", "c", "d", "left"),
        vote("solo", "e", "f", "left"),  # nobody else saw e or f
        vote("z", "a", "c", "left"),  # others saw a and c, but never linked them
    ]
    assert leave_one_out_agreement(votes) == {"solo": None, "x": 1.0, "y": 1.0, "z": None}


def test_agreement_skips_undone_votes_and_scores_ties_only_as_consensus():
    votes = [
        vote("x", "a", "b", "left"),
        vote("x", "c", "d", "tie"),  # not scored for x; puts c level with d for y
        vote("x", "a", "b", "right", undone=True),  # as if never cast
        vote("y", "a", "b", "left"),
        vote("y", "c", "d", "left"),
    ]
    assert leave_one_out_agreement(votes) == {"x": 1.0, "y": 0.75}


def test_agreement_counts_an_even_consensus_as_half():
    # Others put a and b level (each beat c once), so x's a>b is half right.
    votes = [vote("x", "a", "b", "left"), vote("y", "a", "c", "left"), vote("y", "b", "c", "left")]
    assert leave_one_out_agreement(votes)["x"] == 0.5


def test_agreement_caps_refits_to_the_most_active_labelers():
    votes = [vote("x", "a", "b", "left")] * 3 + [vote("y", "a", "b", "left")] * 2
    votes += [vote("z", "a", "b", "left")]
    assert leave_one_out_agreement(votes, max_labelers=2) == {"x": 1.0, "y": 1.0, "z": None}
    assert leave_one_out_agreement(votes, max_labelers=0) == dict.fromkeys("xyz")


@pytest.mark.parametrize(
    ("kwargs", "bad_vote", "match"),
    [
        ({"max_labelers": -1}, None, "max_labelers"),
        ({}, vote("x", "a", "b", "both"), "outcome"),
    ],
)
def test_agreement_rejects_bad_input(kwargs, bad_vote, match):
    votes = [vote("x", "a", "b", "left")] + ([bad_vote] if bad_vote else [])
    with pytest.raises(ValueError, match=match):
        leave_one_out_agreement(votes, **kwargs)
