"""Per-labeler counts and agreement with the others' consensus (for the project owner).

Agreement is the share of a labeler's decided votes (ties left out) whose winner the
other labelers' Bradley-Terry refit also puts above the loser
(:func:`ranker.agreement.leave_one_out_agreement`), so nobody agrees with themselves.
A careful labeler on a sensible project lands well above 50%; a careless one near
50%; an adversarial one below. "n/a" when the others' votes never link the images
the labeler compared, or past the most active labelers (one refit each).
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from ranker.agreement import DEFAULT_MAX_LABELERS, leave_one_out_agreement

STATS_HEADERS = ["labeler", "votes", "ties", "skips", "agreement", "median seconds"]
AGREEMENT_NOTE = (
    "*agreement*: share of a labeler's decided votes that the **other** labelers' "
    "consensus orders the same way (0.5 = coin flip). n/a: the others never compared "
    f"those images, or past the {DEFAULT_MAX_LABELERS} most active labelers."
)


def labeler_stats(
    votes: list,
    skips: list[tuple[str, str, str]] | None = None,
    max_labelers: int = DEFAULT_MAX_LABELERS,
) -> list[dict]:
    """One row per labeler, most active first; ``agreement`` is None when not measurable.

    votes: the project's non-undone VoteRow-like objects (``left_uid``, ``right_uid``,
        ``outcome``, ``labeler``, ``response_ms``); skips: ``(left_uid, right_uid,
        labeler)`` rows; max_labelers: leave-one-out refits at most (most active first).

    >>> from types import SimpleNamespace as V
    >>> rows = labeler_stats([V(left_uid="a", right_uid="b", outcome="left", labeler=x,
    ...                         response_ms=None) for x in ("x", "y")])
    >>> rows[0]["agreement"]
    1.0
    """
    acc: dict[str, dict] = defaultdict(lambda: {"votes": 0, "ties": 0, "skips": 0, "ms": []})
    for v in votes:
        a = acc[v.labeler]
        a["votes"] += 1
        a["ties"] += v.outcome == "tie"
        if v.response_ms is not None:
            a["ms"].append(v.response_ms)
    agreement = leave_one_out_agreement(votes, max_labelers)
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
                "agreement": _round(agreement.get(labeler)),
                "median seconds": round(statistics.median(a["ms"]) / 1000, 2) if a["ms"] else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["votes"], r["labeler"]))


def stats_table(rows: list[dict]) -> list[list]:
    """Rows as the owner's table shows them: STATS_HEADERS order, "n/a" for no agreement.

    >>> stats_table([{"labeler": "x", "votes": 1, "ties": 0, "skips": 0,
    ...               "agreement": None, "median seconds": 1.5}])
    [['x', 1, 0, 0, 'n/a', 1.5]]
    """
    return [
        [("n/a" if r[h] is None else r[h]) if h == "agreement" else r[h] for h in STATS_HEADERS]
        for r in rows
    ]


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 3)
