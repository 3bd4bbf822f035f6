"""Ranking confidence against votes, for the progress plot.

The engine reports the current confidence only, so the curve is rebuilt by
replaying the vote log (the same replay the engine does) and sampling the
confidence at up to ``points`` vote counts. The result is cached per project until
the log changes (a new vote, an undo, an exclusion).
"""

from __future__ import annotations

import threading

import numpy as np

POINTS = 40


class ConfidenceHistory:
    """Cached (votes, confidence) series per project."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple, list[tuple[int, float]]]] = {}
        self._lock = threading.Lock()

    def series(self, session, points: int = POINTS) -> list[tuple[int, float]]:
        votes = session.votes()
        key = (len(votes), votes[-1].id if votes else 0, int(session.ratings.pool.active.sum()))
        with self._lock:
            hit = self._cache.get(session.name)
            if hit and hit[0] == key:
                return hit[1]
        series = confidence_series(session, votes, points)
        with self._lock:
            self._cache[session.name] = (key, series)
        return series


def confidence_series(session, votes: list, points: int = POINTS) -> list[tuple[int, float]]:
    """Replay ``votes`` and sample the engine's ranking confidence along the way."""
    from ranker.ratings import Ratings
    from ranker.selection import ranking_confidence

    pool = session.ratings.pool
    start = pool.start_ratings() if hasattr(pool, "start_ratings") else None
    ratings = Ratings(pool.n, session.rating_config, start)
    ratings.pool.active[:] = pool.active
    checkpoints = set(
        np.unique(np.linspace(0, len(votes), min(points, len(votes) + 1)).astype(int))
    )
    out = []
    if 0 in checkpoints:
        out.append((0, _confidence(ranking_confidence, ratings.pool)))
    for k, vote in enumerate(votes, start=1):
        winner, loser = vote.winner_loser
        ratings.apply(session.index[winner], session.index[loser], vote.outcome == "tie")
        if k in checkpoints:
            out.append((k, _confidence(ranking_confidence, ratings.pool)))
    return out


def _confidence(fn, pool) -> float:
    return float(fn(pool)) if pool.active.sum() > 1 else 1.0
