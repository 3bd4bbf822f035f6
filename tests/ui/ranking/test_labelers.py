"""Per-labeler counts and agreement with the others' consensus."""

from __future__ import annotations

from types import SimpleNamespace

from ui.ranking.labelers import STATS_HEADERS, labeler_stats, stats_table


def vote(labeler, left, right, outcome, ms=None):
    return SimpleNamespace(
        labeler=labeler, left_uid=left, right_uid=right, outcome=outcome, response_ms=ms
    )


def test_agreement_counts_and_skips():
    votes = [
        vote("good", "a", "b", "left", 1000),
        vote("good", "c", "b", "right", 3000),
        vote("good", "a", "c", "tie"),
        vote("ok", "a", "b", "left"),
        vote("ok", "a", "b", "left"),
        vote("ok", "b", "c", "left"),
        vote("bad", "a", "b", "right"),
        vote("bad", "b", "c", "left"),
        vote("lone", "x", "y", "left"),
    ]
    rows = {r["labeler"]: r for r in labeler_stats(votes, [("a", "b", "bad")])}
    assert rows["good"] == {
        "labeler": "good",
        "votes": 3,
        "ties": 1,
        "skips": 0,
        "agreement": 1.0,
        "median seconds": 2.0,
    }
    assert rows["bad"]["agreement"] == 0.5 and rows["bad"]["skips"] == 1
    assert rows["lone"]["agreement"] is None


def test_stats_table_shows_missing_agreement_as_na():
    votes = [
        vote("x", "a", "b", "left", 500),
        vote("y", "a", "b", "left"),
        vote("z", "c", "d", "tie"),
    ]
    table = stats_table(labeler_stats(votes, [("a", "b", "w")], max_labelers=1))
    column = STATS_HEADERS.index("agreement")
    assert {row[0]: row[column] for row in table} == {"x": 1.0, "y": "n/a", "z": "n/a", "w": "n/a"}
    assert table[0] == ["x", 1, 0, 0, 1.0, 0.5]
