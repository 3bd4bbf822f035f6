"""Per-labeler counts and agreement with the consensus."""

from __future__ import annotations

from types import SimpleNamespace

from ui.ranking_labelers import labeler_stats


def vote(labeler, left, right, outcome, ms=None):
    return SimpleNamespace(
        labeler=labeler, left_uid=left, right_uid=right, outcome=outcome, response_ms=ms
    )


def test_agreement_counts_and_skips():
    rank = {"a": 1, "b": 2, "c": 3}
    votes = [
        vote("good", "a", "b", "left", 1000),
        vote("good", "c", "b", "right", 3000),
        vote("good", "a", "c", "tie"),
        vote("bad", "a", "b", "right"),
        vote("bad", "b", "c", "left"),
    ]
    rows = {r["labeler"]: r for r in labeler_stats(votes, rank, [("a", "b", "bad")])}
    assert rows["good"] == {
        "labeler": "good",
        "votes": 3,
        "ties": 1,
        "skips": 0,
        "agreement": 1.0,
        "median seconds": 2.0,
    }
    assert rows["bad"]["agreement"] == 0.5 and rows["bad"]["skips"] == 1
