"""Per-labeler counts and agreement with the consensus ranking (for the project owner).

Agreement is the share of a labeler's decided votes (ties left out) whose winner
stands above the loser in the current leaderboard. A careful labeler on a sensible
project lands well above 50%; a careless one near 50%; an adversarial one below.
The consensus includes the labeler's own votes, which flatters labelers who cast a
large share of all votes; with several labelers the ranking is dominated by others.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

STATS_HEADERS = ["labeler", "votes", "ties", "skips", "agreement", "median seconds"]


def labeler_stats(
    votes: list, rank: dict[str, int], skips: list[tuple[str, str, str]] | None = None
) -> list[dict]:
    """One row per labeler, most active first.

    votes: VoteRow-like objects (``left_uid``, ``right_uid``, ``outcome``, ``labeler``,
        ``response_ms``); rank: uid -> leaderboard position (1 = best);
        skips: ``(left_uid, right_uid, labeler)`` rows.

    >>> from types import SimpleNamespace as V
    >>> rows = labeler_stats([V(left_uid="a", right_uid="b", outcome="left", labeler="x",
    ...                         response_ms=None)], {"a": 1, "b": 2})
    >>> rows[0]["agreement"]
    1.0
    """
    acc: dict[str, dict] = defaultdict(
        lambda: {"votes": 0, "ties": 0, "skips": 0, "agree": 0, "decided": 0, "ms": []}
    )
    for v in votes:
        a = acc[v.labeler]
        a["votes"] += 1
        if v.response_ms is not None:
            a["ms"].append(v.response_ms)
        if v.outcome == "tie":
            a["ties"] += 1
            continue
        winner, loser = (
            (v.right_uid, v.left_uid) if v.outcome == "right" else (v.left_uid, v.right_uid)
        )
        if winner in rank and loser in rank:
            a["decided"] += 1
            a["agree"] += rank[winner] < rank[loser]
    for _, _, labeler in skips or []:
        acc[labeler]["skips"] += 1
    rows = []
    for labeler, a in acc.items():
        rows.append(
            {
                "labeler": labeler,
                "votes": a["votes"],
                "ties": a["ties"],
                "skips": a["skips"],
                "agreement": round(a["agree"] / a["decided"], 3) if a["decided"] else None,
                "median seconds": round(statistics.median(a["ms"]) / 1000, 2) if a["ms"] else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["votes"], r["labeler"]))
