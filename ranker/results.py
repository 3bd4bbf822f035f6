"""What a project's ratings say: the leaderboard and the progress summary.

Read-outs of a :class:`ranker.ratings.Ratings` and the project's images, kept apart
from the session so they take plain values and return plain rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ranker.errors import StudioError
from ranker.ratings import Ratings
from ranker.store import ImageRow

LEADERBOARD_ORDERS = ("auto", "conservative", "mu", "refit")
"""``auto``: the pair strategy's own ranking (what ``bench/rank_bench.py`` scores as
"own"): for ``active``, its sort order while labelers agree, TrueSkill mu while noisy
votes are sparse, the refit after that; mu for Image Ranker's modes."""

DEFAULT_ORDER = "auto"
"""The best ranking the project has: every output (Ranking tab, CLI, HTTP API, JSON and
CSV exports, the published dataset's ``images`` table, the demo's progress line) shows
it unless the caller names another order. An online rating (mu, mu - 3 sigma) depends
on the order votes came in; the strategy's own ranking does not for ``active`` (sort
order, then a refit of all votes), which is why Chatbot Arena also moved its public
leaderboard from online Elo to a Bradley-Terry fit. Image Ranker's own file format is
the one exception: it keeps Image Ranker's meaning (rank by mu)."""


def default_order(order: str | None = None) -> str:
    """The order a leaderboard uses: ``order`` when given, else :data:`DEFAULT_ORDER`.

    Every route that shows or writes a ranking resolves its order here, so they agree.

    Example:
        >>> default_order(), default_order("mu")
        ('auto', 'mu')
    """
    return DEFAULT_ORDER if order is None else order


@dataclass(frozen=True)
class Progress:
    votes: int
    budget: int | None
    images: int
    active_images: int
    votes_per_image: float
    confidence: float
    done: bool


def leaderboard_rows(
    ratings: Ratings,
    images: list[ImageRow],
    order: str | None = None,
    own: np.ndarray | None = None,
    fitted: np.ndarray | None = None,
) -> list[dict]:
    """Rows sorted best first by ``conservative`` (mu - 3 sigma), ``mu``, ``refit`` or
    ``auto`` (``own``: the strategy's scores, higher is better; mu when not given).
    ``fitted``: refit scores already at hand (the strategy's background refit); without
    them ``refit`` fits all votes now.

    Excluded images go last, still ranked among themselves.

    Example:
        >>> leaderboard_rows(session.ratings, session.images, "mu")[0]["rank"]  # doctest: +SKIP
        1
    """
    pool, r = ratings.pool, ratings
    order = default_order(order)
    keys = {"conservative": pool.mu - 3.0 * pool.sigma, "mu": pool.mu}
    keys["auto"] = pool.mu if own is None else own
    if order == "refit" and fitted is not None:
        keys["refit"] = fitted
    elif order == "refit":
        from common.maths import bt_fit

        first, second, result = pool.history()
        keys["refit"] = bt_fit(pool.n, first, second, result)[0]
    if order not in keys:
        raise StudioError(f"order must be one of {', '.join(LEADERBOARD_ORDERS)}, not {order!r}")
    sort_key = np.asarray(keys[order], dtype=np.float64)
    excluded = np.fromiter((img.excluded for img in images), dtype=bool, count=pool.n)
    # stable: equal keys keep image order, as the former Python sort did (O(N log N) in C)
    ranked = np.lexsort((-sort_key, excluded)).tolist()
    mu, sigma, counts = pool.mu.tolist(), pool.sigma.tolist(), pool.counts.tolist()
    rows = []
    for rank, i in enumerate(ranked, start=1):
        img = images[i]
        rows.append(
            {
                "rank": rank,
                "uid": img.uid,
                "path": img.path,
                "mu": mu[i],
                "sigma": sigma[i],
                "conservative": mu[i] - 3.0 * sigma[i],
                "wins": r.wins[i],
                "losses": r.losses[i],
                "ties": r.ties[i],
                "comparisons": counts[i],
                "excluded": img.excluded,
                "exclusion_reason": img.exclusion_reason or "",
            }
        )
    return rows


def progress_of(ratings: Ratings, budget: int | None) -> Progress:
    """Votes so far against the budget, and how settled the ranking is (0..1)."""
    from ranker.selection import ranking_confidence

    pool = ratings.pool
    active = int(pool.active.sum())
    votes = pool.n_votes
    return Progress(
        votes=votes,
        budget=budget,
        images=pool.n,
        active_images=active,
        votes_per_image=votes / max(active, 1),
        confidence=float(ranking_confidence(pool)) if active > 1 else 1.0,
        done=bool(budget) and votes >= budget,
    )
