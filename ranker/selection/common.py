"""Helpers every selector shares: pair keys, the `avoid` rule, random pairs, vote sync."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np

from ranker.pool import Pool

Pair = tuple[int, int]


def key(a: int, b: int) -> Pair:
    """The sorted tuple form the service uses for pairs in ``avoid``."""
    return (a, b) if a < b else (b, a)


def first_allowed(candidates: Iterable[Pair], avoid: Collection[Pair]) -> Pair | None:
    """The first candidate that is a real pair and not reserved, else None."""
    for a, b in candidates:
        if a != b and key(a, b) not in avoid:
            return key(a, b)
    return None


def active_positions(pool: Pool) -> np.ndarray:
    return np.flatnonzero(pool.active)


def random_pair(
    pool: Pool,
    rng: np.random.Generator,
    avoid: Collection[Pair] = (),
    among: np.ndarray | None = None,
    tries: int = 32,
) -> Pair | None:
    """A uniformly random pair of distinct items from ``among`` (default: active items).

    Reserved pairs are redrawn a few times; when ``among`` is tiny and every pair is
    reserved, a reserved pair is returned rather than nothing (the interface's rule).
    """
    items = active_positions(pool) if among is None else np.asarray(among)
    if len(items) < 2:
        return None
    fallback = None
    for _ in range(tries):
        i, j = rng.choice(len(items), size=2, replace=False)
        pair = key(int(items[i]), int(items[j]))
        if pair not in avoid:
            return pair
        fallback = pair
    if len(items) <= 64:  # small: enumerate so a free pair is never missed
        rest = [key(int(a), int(b)) for k, a in enumerate(items) for b in items[k + 1 :]]
        free = [p for p in rest if p not in avoid]
        if free:
            return free[int(rng.integers(len(free)))]
    return fallback


class VoteSync:
    """Feeds a selector each vote of the pool's history exactly once, in order.

    Selectors keep state derived from the vote log. Rather than trusting that
    ``observe`` is called for every vote, they call :meth:`pending` before each pick
    and process what is new; ``reset`` (undo, settings change) rewinds to zero so the
    state is rebuilt by replay and equals what uninterrupted operation would give.
    """

    def __init__(self) -> None:
        self.seen = 0

    def stale(self, pool: Pool) -> bool:
        """True when the history shrank under us (an undo without ``reset``): rebuild."""
        return pool.n_votes < self.seen

    def pending(self, pool: Pool) -> range:
        new = range(self.seen, pool.n_votes)
        self.seen = pool.n_votes
        return new


def candidate_pairs(
    order: np.ndarray,
    n: int,
    var: np.ndarray,
    rng: np.random.Generator,
    *,
    anchors: int,
    random_anchors: int,
    neighbours: int,
    random_partners: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate set an information-gain pick scores, O(anchors) not O(N^2).

    ``order``: the active items in ranking order (at least two); ``var``: each one's
    uncertainty (same length). Anchors are the ``anchors`` most uncertain items plus
    ``random_anchors`` random ones; each is paired with its ``neighbours`` nearest items
    on either side of the ranking and ``random_partners`` random items. Returns the two
    sides (``a[k]`` may equal ``b[k]``; callers drop those).
    """
    m = len(order)
    pos = np.full(n, -1, dtype=np.int64)
    pos[order] = np.arange(m)
    top = min(anchors, m)
    picked = order[np.argpartition(-var, top - 1)[:top]] if top < m else order
    picked = np.concatenate([picked, order[rng.integers(m, size=random_anchors)]])
    offsets = np.concatenate([np.arange(-neighbours, 0), np.arange(1, neighbours + 1)])
    near = np.clip(pos[picked][:, None] + offsets[None, :], 0, m - 1)
    partners = np.concatenate(
        [order[near], order[rng.integers(m, size=(len(picked), random_partners))]], axis=1
    )
    return np.repeat(picked, partners.shape[1]), partners.ravel()
