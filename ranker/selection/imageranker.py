"""Image Ranker's pair modes (smart shuffle, auto-shuffle, elimination), random, Rapidata.

Reproduced from Image Ranker's behaviour (docs/pair-selection.md), without its O(N^2) queue:
its smart shuffle sorts every unserved pair by ``|mu_a - mu_b| + 0.8 (count_a +
count_b)`` (sigma unused) and serves from the front; we find the front of that order
directly with a window over the mu-sorted items, or count level by count level on large
sets (:func:`smart_shuffle_front`); both are exact (the same keys; pairs of equal key may
come in another order) and O(N log N) per shuffle.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from ranker.pool import DRAW, Pool
from ranker.selection.common import Pair, VoteSync, active_positions, key, random_pair
from ranker.tsmath import draw_margin, rate_one

COUNT_WEIGHT = 0.8  # Image Ranker's weight of comparison counts in the shuffle key
AUTO_SHUFFLE_EVERY = 3  # Image Ranker re-sorts its queue every three comparisons
_LEVELS_FROM = 2_000  # above this many items, search count level by count level from the start
_WIDE_KEYS = 250_000  # beyond this many window keys, search count level by count level


def smart_shuffle_front(
    mu: np.ndarray,
    counts: np.ndarray,
    items: np.ndarray,
    m: int,
    rng: np.random.Generator,
    skip: Collection[Pair] = (),
) -> list[Pair]:
    """The first ``m`` pairs of Image Ranker's smart-shuffle order, skipping ``skip``.

    The count term bounds the key from below (``key >= 0.8 (c_a + c_b)``), so only
    the least-compared items can head the order: the search grows a set of items by
    count level until no pair with an item outside it can beat the m-th pair found.
    Inside the set, items are sorted by mu (random order among equal mu, so ties
    break randomly like a shuffled queue) and pairs up to ``K`` apart are scanned,
    exact once the m-th key is below the bound on pairs further apart. Above
    ``_LEVELS_FROM`` items the search goes one pair of count levels at a time
    (:func:`_front_by_levels`): a window over mixed counts had to widen to O(N^2) keys
    (seconds per pick at 10,000 images once counts spread), the level search stays
    O(N k) per opened pair of levels (about 2 ms per pick there).
    """
    if len(items) < 2:
        return []
    items = rng.permutation(items)
    if len(items) > _LEVELS_FROM:
        order = items[np.argsort(mu[items], kind="stable")]
        return [p for _, p in _front_by_levels(mu, counts, order, m, skip)]
    c = counts[items]
    levels = np.unique(c)
    chosen: list[tuple[float, Pair]] = []
    for t, level in enumerate(levels):
        inside = items[c <= level]
        if len(inside) < 2:
            continue
        chosen = _front_within(mu, counts, inside, m, skip)
        outside = COUNT_WEIGHT * (levels[t + 1] + levels[0]) if t + 1 < len(levels) else np.inf
        if len(chosen) == m and chosen[-1][0] <= outside:
            break
    return [p for _, p in chosen]


def _front_within(
    mu: np.ndarray, counts: np.ndarray, items: np.ndarray, m: int, skip: Collection[Pair]
) -> list[tuple[float, Pair]]:
    """Exact (up to a cap on the window) smallest-key pairs among ``items``."""
    order = items[np.argsort(mu[items], kind="stable")]
    ms, cs = mu[order], COUNT_WEIGHT * counts[order].astype(np.float64)
    size = len(order)
    window = min(16, size - 1)
    while True:
        keys, lo, hi = [], [], []
        for d in range(1, window + 1):
            keys.append(ms[d:] - ms[:-d] + cs[d:] + cs[:-d])
            lo.append(np.arange(size - d))
            hi.append(np.arange(d, size))
        keys_a, lo_a, hi_a = np.concatenate(keys), np.concatenate(lo), np.concatenate(hi)
        chosen = _walk_front(keys_a, order[lo_a], order[hi_a], m, skip)
        if window >= size - 1:
            return chosen
        reach = ms[window + 1 :] - ms[: size - window - 1] + cs[: size - window - 1]
        bound = reach.min() + cs.min()
        if len(chosen) == m and chosen[-1][0] <= bound:
            return chosen
        window = min(size - 1, window * 4)
        if window * size > _WIDE_KEYS:
            # mixed counts defeat the window's bound (a low-count item far from the others
            # keeps it low): per pair of count levels the key is the mu gap plus a constant
            return _front_by_levels(mu, counts, order, m, skip)


def _front_by_levels(
    mu: np.ndarray, counts: np.ndarray, order: np.ndarray, m: int, skip: Collection[Pair]
) -> list[tuple[float, Pair]]:
    """Exact smallest-key pairs among ``order`` (sorted by mu), one pair of count levels
    at a time, cheapest levels first.

    Within two levels ``(c1, c2)`` every key is ``|mu_a - mu_b| + w (c1 + c2)``, so
    the nearest neighbours in mu are the best pairs: each item of one level is paired
    with its ``k`` nearest items of the other on each side, ``k`` growing until the
    m-th key found is below the gap to the ``k+1``-th neighbour. Levels whose constant
    alone exceeds the m-th key found so far are never opened: O(N k) per opened pair
    of levels instead of O(N^2) keys.
    """
    c = counts[order]
    groups = {int(level): order[c == level] for level in np.unique(c)}  # each sorted by mu
    level_pairs = sorted(
        ((c1, c2) for c1 in groups for c2 in groups if c1 <= c2), key=lambda p: (sum(p), p)
    )
    best: list[tuple[float, Pair]] = []
    for c1, c2 in level_pairs:
        base = COUNT_WEIGHT * (c1 + c2)
        if len(best) == m and base > best[-1][0]:
            break
        found = _front_between(mu, groups[c1], groups[c2], c1 == c2, base, m, skip)
        best = sorted(best + found, key=lambda kp: kp[0])[:m]
    return best


def _front_between(
    mu: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    same: bool,
    base: float,
    m: int,
    skip: Collection[Pair],
) -> list[tuple[float, Pair]]:
    """The ``m`` smallest ``|mu_a - mu_b| + base`` pairs between two mu-sorted groups
    (within one group when ``same``), exact by the nearest-neighbour bound."""
    ml, mr = mu[left], mu[right]
    nl, nr = len(left), len(right)
    if (same and nl < 2) or nl == 0 or nr == 0:
        return []
    k = max(2, m)
    while True:
        if same:  # pairs up to k apart in the sorted group
            d = np.arange(1, min(k, nl - 1) + 1)
            lo = np.concatenate([np.arange(nl - j) for j in d])
            hi = np.concatenate([np.arange(j, nl) for j in d])
            a, b = left[lo], left[hi]
            keys = ml[hi] - ml[lo] + base
            exhausted = k >= nl - 1
            gap = (ml[k + 1 :] - ml[: nl - k - 1]).min() if not exhausted else np.inf
        else:  # each left item with its k nearest right items on each side
            pos = np.searchsorted(mr, ml)
            offsets = np.arange(-k, k)
            idx = pos[:, None] + offsets[None, :]
            ok = (idx >= 0) & (idx < nr)
            a = np.broadcast_to(left[:, None], idx.shape)[ok]
            b = right[idx[ok]]
            keys = np.abs(mr[idx[ok]] - np.repeat(ml, ok.sum(axis=1))) + base
            exhausted = k >= nr
            below, above = pos - k - 1, pos + k
            gaps = np.full(nl, np.inf)
            has = below >= 0
            gaps[has] = ml[has] - mr[below[has]]
            has = above < nr
            gaps[has] = np.minimum(gaps[has], mr[above[has]] - ml[has])
            gap = gaps.min()
        found = _walk_front(keys, a, b, m, skip)
        if exhausted or (len(found) == m and found[-1][0] <= gap + base):
            return found
        k *= 4


def _walk_front(
    keys: np.ndarray, a: np.ndarray, b: np.ndarray, m: int, skip: Collection[Pair]
) -> list[tuple[float, Pair]]:
    """The ``m`` smallest-key pairs not in ``skip``, growing the partial sort as needed."""
    take = min(len(keys), 4 * m + 8)
    while True:
        idx = np.argpartition(keys, take - 1)[:take] if take < len(keys) else np.arange(len(keys))
        idx = idx[np.argsort(keys[idx], kind="stable")]
        out = []
        for k in idx.tolist():
            pair = key(int(a[k]), int(b[k]))
            if pair not in skip:
                out.append((float(keys[k]), pair))
                if len(out) == m:
                    return out
        if take >= len(keys):
            return out
        take = min(len(keys), take * 4)


class _Compared:
    """The set of pairs already voted on (Image Ranker never re-serves a compared pair)."""

    def __init__(self) -> None:
        self.sync = VoteSync()
        self.pairs: set[Pair] = set()

    def update(self, pool: Pool) -> set[Pair]:
        if self.sync.stale(pool):
            self.__init__()
        for k in self.sync.pending(pool):
            self.pairs.add(key(pool.first[k], pool.second[k]))
        return self.pairs


class _SkipView:
    """``pair in view``: compared or reserved, without building a merged set."""

    def __init__(self, *sets: Collection[Pair]) -> None:
        self.sets = sets

    def __contains__(self, pair: object) -> bool:
        return any(pair in s for s in self.sets)


class SmartShuffleSelector:
    """Smart shuffle re-sorted before every vote: the cheapest pair by Image Ranker's key."""

    name = "smart_shuffle"

    def __init__(self) -> None:
        self._compared = _Compared()

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        compared = self._compared.update(pool)
        items = active_positions(pool)
        front = smart_shuffle_front(
            pool.mu, pool.counts, items, 1, rng, _SkipView(compared, set(avoid))
        )
        if front:
            return front[0]
        # Every pair compared or reserved: Image Ranker would stop; we allow repeats.
        front = smart_shuffle_front(pool.mu, pool.counts, items, 1, rng, set(avoid))
        return front[0] if front else random_pair(pool, rng, avoid)

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        self._compared.update(pool)

    def reset(self) -> None:
        self._compared = _Compared()


class AutoShuffleSelector(SmartShuffleSelector):
    """Image Ranker's auto-shuffle: serve a queue in order, re-sort it every 3 votes.

    Between shuffles the queue keeps the keys of the last shuffle (that staleness is
    the mode's character). The keys are the ratings and counts as they were at the
    shuffle, replayed from the vote log (the pool only holds the latest), and ties
    break by a generator seeded with the shuffle number, so the queue is a function
    of the history alone: undo and restart serve exactly the same pairs.
    """

    name = "auto_shuffle"

    def __init__(self, every: int = AUTO_SHUFFLE_EVERY) -> None:
        super().__init__()
        self.every = every
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._queue: list[Pair] = []
        self._epoch = -1
        self._done = 0  # votes applied to the replayed ratings below
        self._mu = self._sigma = self._counts = None

    def _ratings_at(self, pool: Pool, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, counts) after the first ``k`` votes, advancing a private replay."""
        if self._mu is None or len(self._mu) != pool.n or self._done > k:
            self._mu, self._sigma = pool.start_ratings()
            self._counts = np.zeros(pool.n, dtype=np.int64)
            self._done = 0
        beta, tau, eps = pool.beta, pool.tau, draw_margin(pool.draw_probability, pool.beta)
        mu, sd, counts = self._mu, self._sigma, self._counts
        for j in range(self._done, k):
            a, b, r = pool.first[j], pool.second[j], pool.result[j]
            mu[a], sd[a], mu[b], sd[b] = rate_one(mu[a], sd[a], mu[b], sd[b], r, beta, tau, eps)
            counts[a] += 1
            counts[b] += 1
        self._done = k
        return mu, counts

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        if self._compared.sync.stale(pool):
            self.reset()
        compared = self._compared.update(pool)
        skip = _SkipView(compared, set(avoid))
        epoch = pool.n_votes // self.every
        if epoch != self._epoch or not any(p not in skip for p in self._queue):
            self._epoch = epoch
            mu, counts = self._ratings_at(pool, epoch * self.every)
            size = self.every + len(avoid) + 4
            ties = np.random.default_rng([epoch, pool.n])
            self._queue = smart_shuffle_front(
                mu, counts, active_positions(pool), size, ties, compared
            )
        inactive = ~pool.active
        for pair in self._queue:
            if pair not in skip and not (inactive[pair[0]] or inactive[pair[1]]):
                return pair
        return super().next_pair(pool, rng, avoid)


class RandomSelector:
    """Uniformly random pairs: the baseline every strategy must beat."""

    name = "random"

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        return random_pair(pool, rng, avoid)

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        pass

    def reset(self) -> None:
        pass


class EliminationSelector:
    """Sequential elimination: every decided vote knocks its loser out of the running.

    Image Ranker rebuilds its shuffled queue after each elimination, so the next pair
    is a random pair of survivors. N - 1 decided votes leave one image; then None.
    Eliminated images stay active in the pool (they keep their ratings); the
    eliminated set is derived from the vote history, so undo brings a loser back.
    A tie knocks nobody out, and a tied pair of survivors is not served again: when
    every pair of survivors has tied (the last two called equal), they share the win
    and the strategy is done.
    """

    name = "elimination"

    def __init__(self) -> None:
        self._sync = VoteSync()
        self._out: np.ndarray = np.zeros(0, dtype=bool)
        self._tied: set[Pair] = set()

    def remaining(self, pool: Pool) -> np.ndarray:
        """Positions of active images not yet eliminated."""
        if self._sync.stale(pool) or len(self._out) > pool.n:
            self.reset()
        if len(self._out) < pool.n:
            self._out = np.concatenate([self._out, np.zeros(pool.n - len(self._out), bool)])
        for k in self._sync.pending(pool):
            if pool.result[k] != DRAW:
                self._out[pool.second[k]] = True
            else:
                self._tied.add(key(pool.first[k], pool.second[k]))
        return np.flatnonzero(pool.active & ~self._out)

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        survivors = self.remaining(pool)
        tied = self._tied
        for skip in (_SkipView(tied, set(avoid)), tied):
            pair = random_pair(pool, rng, skip, among=survivors)
            if pair is not None and pair not in tied:
                return pair
        return None  # every pair of survivors tied: they share the win

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        self.remaining(pool)

    def reset(self) -> None:
        self._sync = VoteSync()
        self._out = np.zeros(0, dtype=bool)
        self._tied = set()


class BudgetSelector:
    """Rapidata-style job: a comparison budget, a share of random matchups, the rest close.

    A close matchup is a random image against its nearest neighbour in rating (the
    pool's mu; Rapidata uses Elo), a pair not voted on yet while one is found (after a
    tie the two stay nearest neighbours). Returns None once ``budget`` votes are in.
    """

    name = "budget"

    def __init__(self, budget: int | None = None, random_share: float = 0.5) -> None:
        if not 0.0 <= random_share <= 1.0:
            raise ValueError(f"random_share must be in [0, 1], got {random_share}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be a non-negative number of votes, got {budget}")
        self.budget, self.random_share = budget, random_share
        self._compared = _Compared()

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        if self.budget is not None and pool.n_votes >= self.budget:
            return None
        items = active_positions(pool)
        if len(items) < 2 or rng.random() < self.random_share:
            return random_pair(pool, rng, avoid)
        order = items[np.argsort(pool.mu[items], kind="stable")]
        sorted_mu = pool.mu[order]
        skip = _SkipView(self._compared.update(pool), avoid)
        for _ in range(8):
            t = int(rng.integers(len(order)))
            sides = [u for u in (t - 1, t + 1) if 0 <= u < len(order)]
            sides.sort(key=lambda u: abs(sorted_mu[u] - sorted_mu[t]))
            for u in sides:
                pair = key(int(order[t]), int(order[u]))
                if pair not in skip:
                    return pair
        return random_pair(pool, rng, avoid)

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        pass

    def reset(self) -> None:
        self._compared = _Compared()
