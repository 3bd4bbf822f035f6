"""Quicksort partitions derived from the vote log (the "consistent labeler" half of active).

With labelers who never contradict themselves, sorting structure beats any per-pair
heuristic: every image in a bucket is compared with one pivot, and transitivity
then orders whole buckets (docs/pair-selection.md: 4.2 votes per image to tau 0.95
with a noiseless labeler, against 6.6 for smart shuffle). Anytime quality hinges on balanced
pivots (a random pivot resolves a third of a bucket's pairs per level, a median
half), so each bucket first sorts a few *candidates* (its first members in a fixed
hash order, about sqrt(size) of them) by binary insertion and takes their median.
A child bucket inherits the parent's candidates that fell into it, already sorted,
so most pivots after the first cost few or no extra votes (a sample sort).

The state is a pure function of the vote history: votes are replayed in order and
every decision depends only on earlier votes, so undo and restart rebuild it exactly.
Segments (buckets) occupy disjoint ranges of final positions ``[start, start +
size)``, so comparing starts orders them. Votes that disagree with the established
order are counted as contradictions: they tell :class:`ActiveSelector` its labelers
are noisy and sorting no longer pays; each is remembered as a *dispute* (the order the
contradicting vote claimed) so the selector can re-ask it before believing a misclick.
A spot check (:meth:`check_pair`) first re-asks the voted pair the other votes support
least, and a bucket's pivot questions come least certain answer first.

Ties are answers too. A tie against a pivot puts the item in the pivot's *equal
class*, a bucket placed right below the pivot and sorted on its own (without the
pivot, so it shrinks); a tie between two pivot candidates drops one of them from the
candidates (near-equal: either would do as the pivot). Either way the question is
settled and never asked again: before, a tie recorded nothing and the same pair was
served again and again. No order is invented from a tie, so two ties never chain
into a wrong inferred order. A tie is never a contradiction (a labeler who calls
near-equal images equal is not noisy); a tie on a pair of known order is a check.
In the ranking a pivot is placed among its equal class by the scores that order a
bucket (the refit), not above the whole class.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Collection

import numpy as np
from scipy.special import ndtr

from ranker.pool import DRAW, Pool
from ranker.selection.common import Pair, key
from ranker.tsmath import draw_margin, rate_one

BELOW, PENDING, ABOVE, EQUAL = -1, 0, 1, 2
MAX_CANDIDATES = 15


def _tiebreak(i: int) -> int:
    """A fixed pseudo-random order of items (Knuth hash) for deterministic choices."""
    return (i * 2654435761) & 0xFFFFFFFF


def n_candidates(size: int, cap: int = MAX_CANDIDATES) -> int:
    """Odd sample size about sqrt(size): pivot quality vs votes spent choosing it."""
    k = int(math.isqrt(size))
    k = k if k % 2 else k - 1
    return max(1, min(cap, k))


class _Candidates:
    """A few members whose order is being established; ``above[i, j]``: i known above j."""

    def __init__(self, items: list[int]) -> None:
        self.items = items
        self.index = {c: t for t, c in enumerate(items)}
        self.above = np.zeros((len(items), len(items)), dtype=bool)

    def add(self, winner: int, loser: int) -> bool:
        """Record winner > loser with transitive closure; False if it contradicts."""
        w, lo = self.index[winner], self.index[loser]
        if self.above[lo, w]:
            return False
        up = self.above[:, w].copy()
        up[w] = True
        down = self.above[lo, :].copy()
        down[lo] = True
        self.above |= np.outer(up, down)
        return True

    def drop(self, item: int) -> None:
        """Stop considering ``item`` as a pivot (it tied with another candidate)."""
        keep = [t for t, c in enumerate(self.items) if c != item]
        self.items = [self.items[t] for t in keep]
        self.index = {c: t for t, c in enumerate(self.items)}
        self.above = self.above[np.ix_(keep, keep)]

    def known(self, a: int, b: int) -> bool:
        ia, ib = self.index[a], self.index[b]
        return bool(self.above[ia, ib] or self.above[ib, ia])

    def next_question(self) -> tuple[int, int] | None:
        """Binary insertion: the next pair to compare, or None when the order is known."""
        chain = [0]
        for t in range(1, len(self.items)):
            lo = max((u + 1 for u, c in enumerate(chain) if self.above[t, c]), default=0)
            hi = min((u for u, c in enumerate(chain) if self.above[c, t]), default=len(chain))
            if lo < hi:
                return self.items[t], self.items[chain[(lo + hi) // 2]]
            chain.insert(lo, t)
        self.chain = chain
        return None

    def median(self) -> int | None:
        if self.next_question() is not None:
            return None
        return self.items[self.chain[len(self.chain) // 2]]


class QuickSortState:
    """Partition state of the items in ``mask``, fed one vote at a time by :meth:`add`."""

    def __init__(self, pool: Pool, mask: np.ndarray, max_candidates: int = MAX_CANDIDATES) -> None:
        n = pool.n
        self.mask = mask.copy()
        self.max_candidates = max_candidates
        self.predict_pending = True  # order_scores: pending items on their predicted side
        self.place_tied_pivots = True  # order_scores: a pivot among its equal class
        self.least_certain_first = True  # next_pair: see _question_order
        self.repeat_checks = True  # check_pair: see _repeat_check
        self.decisive: list[tuple[int, int]] = []  # (winner, loser) of every decisive vote
        self._decisive = np.zeros((0, 2), dtype=np.int64)  # its array form, see _decisive_array
        self.repeated: set[Pair] = set()  # pairs voted on more than once
        self.tied: list[tuple[int, int]] = []  # [lo, hi): an equal class, then its pivot
        self.env = (pool.beta, pool.tau, draw_margin(pool.draw_probability, pool.beta))
        self.mu, self.sigma = pool.start_ratings()  # replayed ratings: tie-breaks in ranking
        self.seg = np.full(n, -1, dtype=np.int64)
        self.side = np.zeros(n, dtype=np.int8)
        self.beat: list[list[int]] = [[] for _ in range(n)]  # items i beat
        self.lost: list[list[int]] = [[] for _ in range(n)]  # items that beat i
        self.drew: list[list[int]] = [[] for _ in range(n)]  # items i tied with
        self.start: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}
        self.cands: dict[int, _Candidates] = {}  # segments still choosing their pivot
        self.pivot: dict[int, int] = {}  # segments being partitioned
        self.pending: dict[int, dict[int, None]] = {}  # insertion-ordered sets
        self.heap: list[tuple[int, int]] = []  # (-size, segment): largest bucket first
        self.inferred: dict[int, dict[int, None]] = {}  # per segment: placed by transitivity
        self.contradictions = 0.0
        self.checked = 0
        self.ties = 0
        self.disputes: list[tuple[int, int]] = []  # (claimed winner, loser) that contradicted
        self._next_id = 0
        self._new_segment([int(i) for i in np.flatnonzero(mask)], 0)

    # ---- votes --------------------------------------------------------------------
    def add(self, a: int, b: int, result: float) -> None:
        """Process vote ``a`` vs ``b`` (result 1.0: a won; 0.5: tie) in history order."""
        beta, tau, eps = self.env
        self.mu[a], self.sigma[a], self.mu[b], self.sigma[b] = rate_one(
            self.mu[a], self.sigma[a], self.mu[b], self.sigma[b], result, beta, tau, eps
        )
        if not (self.mask[a] and self.mask[b]):
            return
        tie = result == DRAW
        self.ties += tie
        if a in self.beat[b] or b in self.beat[a] or b in self.drew[a]:
            self.repeated.add(key(a, b))
        if tie:
            self.drew[a].append(b)
            self.drew[b].append(a)
        else:
            again = a in self.beat[b] or b in self.beat[a]
            if again:  # a repeated pair: a check
                self._check(a in self.beat[b], (a, b))
            self.beat[a].append(b)
            self.lost[b].append(a)
            self.decisive.append((a, b))
            if again:  # the first answer placed it already: one check, not two (a
                return  # contradiction counted twice skipped the misclick re-ask)
        sa, sb = int(self.seg[a]), int(self.seg[b])
        if sa != sb:
            self._check(not tie and self.start[sa] < self.start[sb], (a, b))
        elif sa in self.cands:
            self._choosing(sa, a, b, tie)
        elif sa in self.pivot:
            self._within(sa, a, b, tie)

    def _check(self, contradicts: bool, claimed: tuple[int, int] | None = None) -> None:
        """One vote on a pair of known order; ``claimed``: (winner, loser) it said."""
        self.checked += 1
        if contradicts:
            self.contradictions += 1.0
            if claimed is not None:
                self.disputes.append(claimed)

    def _choosing(self, s: int, a: int, b: int, tie: bool) -> None:
        cands = self.cands[s]
        if a not in cands.index or b not in cands.index:
            return
        ia, ib = cands.index[a], cands.index[b]
        if cands.above[ia, ib] or cands.above[ib, ia]:  # known by transitivity: a check
            self._check(not tie and bool(cands.above[ib, ia]), (a, b))
        elif tie:  # near-equal: either would do as the pivot, keep one
            cands.drop(max(a, b, key=_tiebreak))
        else:
            cands.add(a, b)
        p = cands.median()
        if p is not None:
            del self.cands[s]
            self._start_partition(s, p, cands)

    def _within(self, s: int, a: int, b: int, tie: bool) -> None:
        """A vote inside a segment being partitioned."""
        p = self.pivot[s]
        side = self.side
        if p in (a, b):
            x = b if a == p else a
            want = ABOVE if x == a else BELOW
            if side[x] == PENDING:
                if tie:
                    self._equal(s, x)
                else:
                    self._classify(s, x, want)
            else:
                self._check(not tie and side[x] not in (want, EQUAL), (a, b))
                self.inferred.get(s, {}).pop(x, None)  # verified
        elif not tie:  # winner a, loser b, neither the pivot
            if side[a] == BELOW and side[b] == ABOVE:
                self._check(True, (a, b))
            elif side[b] == ABOVE and side[a] == PENDING:
                self._classify(s, a, ABOVE)
            elif side[a] == BELOW and side[b] == PENDING:
                self._classify(s, b, BELOW)
            elif side[a] != PENDING and side[b] != PENDING and side[a] != side[b]:
                self._check(False)
        if s in self.pivot and not self.pending[s]:
            self._split(s)

    def _equal(self, s: int, x: int) -> None:
        """x tied with the pivot: into the pivot's equal class (nothing follows from it)."""
        self.side[x] = EQUAL
        del self.pending[s][x]

    def _classify(self, s: int, x: int, side: int) -> None:
        """Put x on one side of the pivot, then everything transitivity puts there too."""
        stack = [x]
        p = self.pivot[s]
        pending = self.pending[s]
        while stack:
            y = stack.pop()
            if y == p or y not in pending:
                continue
            self.side[y] = side
            del pending[y]
            if y != x:  # placed by transitivity alone: what a spot check verifies
                self.inferred.setdefault(s, {})[y] = None
            self._recheck(s, y, side)
            # above the pivot: whoever beat y is above too; below: whoever y beat is below
            stack.extend(self.lost[y] if side == ABOVE else self.beat[y])

    def _recheck(self, s: int, y: int, side: int) -> None:
        """Earlier votes of y that this classification separates are checks after all."""
        p, seg, sides = self.pivot[s], self.seg, self.side
        for z, y_won in itertools.chain(
            ((z, True) for z in self.beat[y]), ((z, False) for z in self.lost[y])
        ):
            claimed = (y, z) if y_won else (z, y)
            if z == p:
                if (side == ABOVE) != y_won:
                    self._check(True, claimed)
            elif seg[z] == s and sides[z] == -side and (side == ABOVE) != y_won:
                self._check(True, claimed)

    # ---- segments -----------------------------------------------------------------
    def _new_segment(self, items: list[int], start: int) -> None:
        s = self._next_id
        self._next_id += 1
        self.start[s] = start
        self.members[s] = items
        self.seg[items] = s
        if len(items) < 2:
            return
        k = n_candidates(len(items), self.max_candidates)
        chosen = sorted(items, key=_tiebreak)[:k]
        cands = _Candidates(chosen)
        for c in chosen:  # order already known from earlier votes among them
            for d in self.beat[c]:
                if d in cands.index and not cands.add(c, d):
                    self._check(True, (c, d))
        for c in chosen:  # earlier ties among them: settled as a tie is while choosing
            for d in self.drew[c]:
                if c in cands.index and d in cands.index and not cands.known(c, d):
                    cands.drop(max(c, d, key=_tiebreak))
        heapq.heappush(self.heap, (-len(items), s))
        p = cands.median()
        if p is None:
            self.cands[s] = cands
        else:
            self._start_partition(s, p, cands)

    def _start_partition(self, s: int, p: int, cands: _Candidates) -> None:
        items = self.members[s]
        self.pivot[s] = p
        self.pending[s] = dict.fromkeys(i for i in items if i != p)
        self.side[items] = PENDING
        t = cands.index[p]
        for c, u in cands.index.items():  # candidates: order known
            if c != p and self.side[c] == PENDING:
                if cands.above[u, t]:
                    self._classify(s, c, ABOVE)
                elif cands.above[t, u]:
                    self._classify(s, c, BELOW)
        for x in self.beat[p]:  # earlier direct votes against the pivot
            self._classify(s, x, BELOW)
        for x in self.lost[p]:
            self._classify(s, x, ABOVE)
        for x in self.drew[p]:  # earlier ties with the pivot: its equal class, as live
            if x in self.pending[s]:
                self._equal(s, x)
        if not self.pending[s]:
            self._split(s)

    def _split(self, s: int) -> None:
        """Replace a fully partitioned segment by below / equal class / pivot / above."""
        p = self.pivot.pop(s)
        del self.pending[s]
        self.inferred.pop(s, None)
        members = self.members.pop(s)
        start = self.start.pop(s)
        below = [i for i in members if i != p and self.side[i] == BELOW]
        above = [i for i in members if i != p and self.side[i] == ABOVE]
        equal = [i for i in members if i != p and self.side[i] == EQUAL]
        self._new_segment(below, start)
        if equal:
            self.tied.append((start + len(below), start + len(below) + len(equal) + 1))
        self._new_segment(equal, start + len(below))
        self._new_segment([p], start + len(below) + len(equal))
        self._new_segment(above, start + len(below) + len(equal) + 1)

    # ---- queries ------------------------------------------------------------------
    def next_pair(
        self, rng: np.random.Generator, active: np.ndarray, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        """The next sorting question of the largest unfinished segment."""
        while self.heap and not self._open(self.heap[0][1]):
            heapq.heappop(self.heap)
        for _, s in heapq.nsmallest(8, self.heap):
            if s in self.cands:
                q = self.cands[s].next_question()
                if q is not None and key(*q) not in avoid:
                    return key(*q)
            elif s in self.pivot:
                p = self.pivot[s]
                head = itertools.islice(self.pending[s], 64)  # O(1) per pick even at 100k
                pending = [x for x in head if active[x]]
                for t in self._question_order(p, pending, rng).tolist():
                    pair = key(p, pending[t])
                    if pair not in avoid:
                        return pair
        return None

    def _question_order(self, p: int, pending: list[int], rng: np.random.Generator) -> np.ndarray:
        """Pivot questions, least certain answer first (replayed TrueSkill ratings).

        An item the ratings already place far from the pivot is ranked on its predicted
        side meanwhile (``order_scores``) and is often classified later for free, by
        transitivity through a closer item's answer; an uncertain one is where the
        anytime order errs. Measured (N = 200, 16 seeds, noiseless): 4.68 votes per
        image to tau 0.95 against 4.79 in random order; farthest first: 4.98.
        """
        order = rng.permutation(len(pending))
        if not self.least_certain_first or len(pending) < 2:
            return order
        x = np.array(pending)
        spread = np.sqrt(self.sigma[x] ** 2 + self.sigma[p] ** 2 + 2.0 * self.env[0] ** 2)
        certainty = np.abs(ndtr((self.mu[x] - self.mu[p]) / spread) - 0.5)
        return order[np.argsort(certainty[order], kind="stable")]

    def _open(self, s: int) -> bool:
        return s in self.cands or s in self.pivot

    def check_pair(
        self, rng: np.random.Generator, avoid: Collection[Pair] = (), close: bool = False
    ) -> Pair | None:
        """A pair whose order is already known, from neighbouring segments: a spot check.

        Consistent labelers always confirm it; noisy ones contradict it now and then,
        which is the only way to tell them apart (sorting never asks a known pair).
        ``close``: only pairs from neighbouring segments (near in rank, the ones a noisy
        labeler flips most often).
        """
        pair = self._repeat_check(avoid) if self.repeat_checks else None
        if pair is not None:
            return pair
        for s in sorted(self.inferred, key=lambda t: -len(self.inferred[t])) if not close else ():
            if s not in self.pivot:
                continue
            todo = list(itertools.islice(self.inferred[s], 64))
            for t in rng.permutation(len(todo)).tolist():
                pair = key(self.pivot[s], todo[t])
                if pair not in avoid:
                    return pair
        segs = sorted((s for s in self.start if self.members[s]), key=self.start.get)
        if len(segs) < 2:  # empty buckets (nothing below a pivot) hold nothing to check
            return self._candidate_check(rng, avoid)
        for _ in range(8):
            t = int(rng.integers(len(segs) - 1))
            lower, upper = self.members[segs[t]], self.members[segs[t + 1]]
            pair = key(
                int(lower[int(rng.integers(len(lower)))]), int(upper[int(rng.integers(len(upper)))])
            )
            if pair not in avoid:
                return pair
        return None

    def _repeat_check(self, avoid: Collection[Pair] = ()) -> Pair | None:
        """A pair voted on once, the one the other votes support least (smallest margin
        of its winner's replayed mu over its loser's), asked again.

        A consistent labeler repeats the answer; a noisy one flips a near-equal pair
        almost every other time, and the other votes' support is the best guess of
        which pairs are near-equal. A known order far apart (an item placed by
        transitivity against its pivot) is flipped rarely: with those checks alone (even
        the closest ones first) and pivot questions least certain first, 1 of 16
        labelers at 90% was never caught
        after 30 checks; with repeats all 16 were caught by 230 votes at N = 200
        (median 216, was 234), so fewer checks (``min_checks``) do.
        """
        if not self.decisive:
            return None
        votes = self._decisive_array()
        margin = self.mu[votes[:, 0]] - self.mu[votes[:, 1]]
        for t in _smallest(margin, 64).tolist():
            pair = key(int(votes[t, 0]), int(votes[t, 1]))
            if pair not in avoid and pair not in self.repeated:
                return pair
        return None

    def _decisive_array(self) -> np.ndarray:
        """``decisive`` as an array [V, 2], extended by the votes since the last call
        (converting the whole list each check cost tens of ms at 100,000 votes)."""
        have = self._decisive.shape[0]
        if have < len(self.decisive):
            new = np.array(self.decisive[have:], dtype=np.int64).reshape(-1, 2)
            self._decisive = np.concatenate([self._decisive, new])
        return self._decisive

    @property
    def finished(self) -> bool:
        return not self.cands and not self.pivot

    def _candidate_check(
        self, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        """Before the first split: a pivot candidate pair ordered by transitivity alone."""
        for cands in self.cands.values():
            above = cands.above.copy()
            for t, c in enumerate(cands.items):  # direct votes are no check
                for d in self.beat[c]:
                    if d in cands.index:
                        above[t, cands.index[d]] = False
            known = np.argwhere(above)
            # closest first (fewest candidates known between): noisy labelers flip those
            links = cands.above.astype(np.int64)
            between = (links @ links)[known[:, 0], known[:, 1]]
            for t in np.lexsort((rng.random(len(known)), between)).tolist():
                pair = key(cands.items[known[t][0]], cands.items[known[t][1]])
                if pair not in avoid:
                    return pair
        return None

    def noisy(self, tolerance: float, at_least: float = 2.0) -> bool:
        """True once contradictions exceed what consistent labelers would ever produce."""
        return self.contradictions >= at_least and self.contradictions > tolerance * self.checked

    def _place_tied_pivots(self, starts: np.ndarray, within: np.ndarray) -> np.ndarray:
        """Move each pivot that ties left with an equal class to where ``within`` puts
        it among that class (segment starts, fractional between members).

        A tie names no order, yet the equal class is a bucket right below its pivot, so
        the pivot ranked above every member. In the ties world (ties when |dq| < 0.1)
        that left strict tau 0.005 behind auto-shuffle at 7.25-8 votes per image: the
        votes after the sort (refit EIG, e.g. both against a neighbour) never moved it.
        The class keeps its own sorted order; only the pivot moves.
        """
        if not self.tied:
            return starts
        moved = starts.copy()
        order = np.argsort(starts, kind="stable")
        ordered = starts[order]
        for lo, hi in self.tied:  # slices of the start order: O(class size) each
            first, at, end = np.searchsorted(ordered, [lo, hi - 1, hi])
            p = order[at:end]
            if len(p) != 1:
                continue
            group = order[first:at]
            below = group[within[group] < within[p[0]]]
            moved[p[0]] = starts[below].max() + 0.5 if len(below) else lo - 0.5
        return moved

    def order_scores(self, within: np.ndarray | None = None) -> np.ndarray:
        """Higher is better: segment position, then side of the pivot, then ``within``
        (scores that order a bucket's members; the replayed mu by default).

        An item not yet compared with its bucket's pivot goes to the side ``within``
        predicts (above the pivot if it scores higher): early on, when buckets are large
        and most items are pending, putting them all level with the pivot cost anytime
        quality (a strong image waited below every confirmed one).
        """
        n = len(self.seg)
        within = self.mu if within is None else within
        starts = np.array([self.start.get(int(s), -1) for s in self.seg], dtype=np.float64)
        if self.place_tied_pivots:
            starts = self._place_tied_pivots(starts, within)
        partitioning = np.isin(self.seg, list(self.pivot)) & (self.side != EQUAL)
        side = np.where(partitioning, self.side, 0).astype(np.float64)
        if self.predict_pending and self.pivot:
            pivot_of = np.full(self._next_id, -1, dtype=np.int64)
            pivot_of[list(self.pivot)] = list(self.pivot.values())
            pending = np.flatnonzero(partitioning & (self.side == PENDING))
            pending = pending[pivot_of[self.seg[pending]] != pending]
            p = pivot_of[self.seg[pending]]
            side[pending] = np.where(within[pending] > within[p], 1.0, -1.0)
        rank = np.lexsort((within, side, starts))
        keys = np.stack([starts[rank], side[rank], within[rank]])
        # equal keys keep equal scores: no information, no invented order (tau-b counts
        # ties as neither concordant nor discordant, as for a tied mu)
        new = np.concatenate([[True], (keys[:, 1:] != keys[:, :-1]).any(axis=0)])
        scores = np.empty(n)
        scores[rank] = np.cumsum(new, dtype=np.float64)
        return scores


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest values in the order of a stable argsort (ties by
    index), in O(V) instead of O(V log V): all values up to the k-th are kept, so
    boundary ties are resolved exactly as the full sort would."""
    if len(values) <= 4 * k:
        return np.argsort(values, kind="stable")[:k]
    cut = np.partition(values, k - 1)[k - 1]
    idx = np.flatnonzero(values <= cut)
    return idx[np.argsort(values[idx], kind="stable")][:k]
