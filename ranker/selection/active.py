"""The ``active`` strategy: sort while labelers agree with themselves, else refit EIG.

Two regimes need opposite pair selection (measured in docs/pair-selection.md). Consistent labelers are
best served by sorting (quicksort buckets plus transitivity); noisy ones by choosing
the pair with the largest expected information gain on a Bradley-Terry refit of all
votes, which re-examines close pairs instead of trusting one noisy split. ``active``
starts with a warm-up (every image once), sorts, and watches for votes that
contradict the order it has established (a spot check of a known order every
``check_every`` votes, ``min_checks`` of them); once contradictions reach
``min_contradictions`` and exceed ``consistency_tolerance`` of the checkable votes it
switches to its noisy mode for good. Consistent labelers never contradict, so one
contradiction is enough: checks start right after the warm-up (on the pivot
candidates' inferred order, closest pairs first), and 80% labelers are caught at
about 0.55 votes per image, 90% ones at about 0.6.

A misclick is not a noisy labeler: before switching, the contradicted pair is asked
once more (``misclicks`` such re-asks, plus one per 200 votes). If the answer confirms
the sorted order, the contradiction is forgiven and sorting goes on, with a spot check
every vote for ``suspect_checks`` votes; if it repeats the contradiction, the switch
happens. Noisy labelers soon contradict again and switch a few votes later than
without the re-ask.

Before sorting (under ``sort_from`` = 1 vote per image) ``active`` serves Image
Ranker's auto-shuffle pairs (the warm-up, then winners against winners) and ranks them
by TrueSkill mu while some image is unseen, by the refit after: sorting right after the
warm-up spent those votes choosing the root pivot and on spot checks of known orders,
and trailed auto-shuffle by up to 0.10 strict tau at 0.75 votes per image (noiseless).
Spot checks then come every ``check_every`` = 4th vote, ``min_checks`` = 20 of them.

A spot check first re-asks the voted pair the other votes support least
(``repeat_checks``): a noisy labeler flips near-equal pairs about every other time,
a consistent one never, so 90% and 80% labelers are caught within about 30 votes of
the sort's start (N = 200, 16 seeds: all by 1.15 votes per image) and 20 checks do
where 30 did. Pivot questions come least certain answer first
(``least_certain_first``, replayed TrueSkill ratings): far items are ranked on their
predicted side meanwhile and often follow by transitivity. Together, measured with
``bench/rank_bench.py`` (N = 200, 16 seeds): noiseless tau 0.95 at 4.61 votes per
image (was 4.79), 90% tau 0.8 at 3.77 (was 3.88); on 32 other seeds 4.61 (4.82) and
3.79 (3.83).

In the noisy mode, while the vote graph is sparse (under ``online_until`` votes per
image) pairs come from Image Ranker's smart shuffle, balanced counts and close
ratings (measured at 80% labelers that beats refit EIG there by 0.005-0.015 Kendall
tau), ranked by the refit (``sparse_rank``; "mu" was the former choice: in strict tau
the refit ranks auto-shuffle's sparse votes 0.02-0.03 better at 1 vote per image). From then on, EIG on the refit, ranked by the refit.
All of it is replayed from the vote log, so undo and restart behave identically.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy.special import ndtr

from common.maths import BT_PROBIT_BETA
from ranker.pool import DRAW, Pool
from ranker.selection.common import Pair, VoteSync, candidate_pairs, key, random_pair
from ranker.selection.imageranker import AutoShuffleSelector, SmartShuffleSelector
from ranker.selection.refit_model import RefitModel, refit, refit_prior  # noqa: F401 (old import path)
from ranker.selection.sortstate import QuickSortState
from ranker.tsmath import expected_information_gain


class ActiveSelector:
    """See the module docstring. ``mode``: "auto" (default), "sort" or "refit" only."""

    name = "active"

    def __init__(
        self,
        *,
        mode: str = "auto",
        consistency_tolerance: float = 0.01,
        check_every: int = 4,
        min_checks: int = 20,
        max_candidates: int = 15,
        warmup: bool = True,
        objective: str = "eig",
        prior_scale: float = 1.0,
        refit_every: int | None = None,
        anchors: int = 16,
        random_anchors: int = 8,
        neighbours: int = 8,
        random_partners: int = 8,
        min_contradictions: float = 1.0,
        online_until: float = 2.0,
        sparse_pairs: str = "shuffle",
        sort_within: str = "refit",
        misclicks: int = 1,
        suspect_checks: int = 12,
        background: bool = False,
        sort_from: float = 1.0,
        sparse_rank: str = "refit",
        least_certain_first: bool = True,
        repeat_checks: bool = True,
    ) -> None:
        self.least_certain_first, self.repeat_checks = least_certain_first, repeat_checks
        if mode not in ("auto", "sort", "refit"):
            raise ValueError(f"mode must be 'auto', 'sort' or 'refit', got {mode!r}")
        self.mode = mode
        self.tolerance = consistency_tolerance
        self.min_contradictions = min_contradictions
        self.online_until = online_until
        if sparse_pairs not in ("shuffle", "eig"):
            raise ValueError(f"sparse_pairs must be 'shuffle' or 'eig', got {sparse_pairs!r}")
        self.sparse_pairs = sparse_pairs
        if sort_within not in ("refit", "mu"):
            raise ValueError(f"sort_within must be 'refit' or 'mu', got {sort_within!r}")
        self.sort_within = sort_within
        self.misclicks, self.suspect_checks = misclicks, suspect_checks
        self.sort_from = sort_from
        if sparse_rank not in ("refit", "mu"):
            raise ValueError(f"sparse_rank must be 'refit' or 'mu', got {sparse_rank!r}")
        self.sparse_rank = sparse_rank
        self.background = background  # refits in a thread (the app), see refit_model
        self.check_every, self.min_checks = check_every, min_checks
        self.max_candidates = max_candidates
        self.warmup, self.prior_scale = warmup, prior_scale
        if objective not in ("eig", "uncertain"):
            raise ValueError(f"objective must be 'eig' or 'uncertain', got {objective!r}")
        self.objective = objective
        self.refit_every = refit_every
        self.anchors, self.random_anchors = anchors, random_anchors
        self.neighbours, self.random_partners = neighbours, random_partners
        self.reset()

    def reset(self) -> None:
        self._sync = VoteSync()
        self._sort: QuickSortState | None = None
        self._noisy_at: int | None = None  # vote count when sorting was abandoned
        self._model: RefitModel | None = None
        self._shuffle = SmartShuffleSelector()
        self._early = AutoShuffleSelector()
        self._reask: tuple[int, int] | None = None  # (claimed winner, loser) to ask again
        self._reask_since = 0
        self._forgiven = 0
        self._suspect_until = 0  # after a forgiven contradiction: a check every vote

    # ---- state ----------------------------------------------------------------------
    def _update(self, pool: Pool) -> None:
        if self._sync.stale(pool) or (
            self._sort is not None and not np.array_equal(self._sort.mask, pool.active)
        ):
            self.reset()
        if self._model is None:
            every = self.refit_every or max(10, pool.n // 20)
            self._model = RefitModel(every, self.prior_scale, self.background)
        if self.mode == "refit":
            self._noisy_at = 0
        if self._noisy_at is None and self._sort is None:
            self._sort = QuickSortState(pool, pool.active, self.max_candidates)
            self._sort.least_certain_first = self.least_certain_first
            self._sort.repeat_checks = self.repeat_checks
        for k in self._sync.pending(pool):
            if self._noisy_at is not None:
                break
            self._replay(k, pool.first[k], pool.second[k], pool.result[k])
        self._sync.seen = pool.n_votes

    def _replay(self, k: int, a: int, b: int, result: float) -> None:
        """Feed vote ``k`` to the sort; switch to noisy mode unless it may be a misclick."""
        sort = self._sort
        before = sort.contradictions
        sort.add(a, b, result)
        if self.mode != "auto":
            return
        reask, self._reask = self._reask, None
        answered = reask is not None and key(a, b) == key(*reask)
        if answered and result != DRAW and a == reask[1]:  # confirms the sorted order
            sort.contradictions = max(0.0, before - 1.0)
            self._forgiven += 1
            self._suspect_until = k + 1 + self.suspect_checks
        elif reask is not None and not answered and k - self._reask_since < 50:
            self._reask = reask  # the re-ask is still out: decide when it comes back
            return
        if not sort.noisy(self.tolerance, self.min_contradictions):
            return
        allowance = self.misclicks + (k + 1) // 200
        fresh = sort.contradictions <= before + 1  # one new contradiction, not a pattern
        if not answered and sort.disputes and self._forgiven < allowance and fresh:
            self._reask, self._reask_since = sort.disputes[-1], k
        else:
            self._noisy_at = k + 1

    @property
    def sorting(self) -> bool:
        """True while the selector trusts its labelers enough to sort."""
        return self._noisy_at is None

    # ---- the interface ----------------------------------------------------------------
    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        self._update(pool)
        early = self.sorting and self._before_sort(pool)
        pair = self._early.next_pair(pool, rng, avoid) if early else None
        if pair is None and self.warmup:
            pair = self._warmup(pool, rng, avoid)
        reask = self._reask
        if pair is None and self.sorting and reask is not None and key(*reask) not in avoid:
            pair = key(*reask)
        if pair is None and self.sorting:
            pair = self._spot_check(pool, rng, avoid)
            if pair is None:
                pair = self._sort.next_pair(rng, pool.active, avoid)
        if pair is None:
            pair = self._warmup(pool, rng, avoid)
        if pair is None:
            pair = self._eig_pair(pool, rng, avoid)
        return pair if pair is not None else random_pair(pool, rng, avoid)

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        self._update(pool)

    def ranking(self, pool: Pool) -> np.ndarray:
        """Scores to rank by (higher is better): the sort order while sorting, else a refit.

        While sorting, members of one bucket are ordered by the refit (``sort_within``):
        it carries transitivity the bucket structure does not (measured, noiseless
        labelers: tau 0.717 vs 0.679 at 2 votes per image, 0.839 vs 0.823 at 3).

        On a sparse vote graph (under ``online_until`` votes per active image) the
        pool's online TrueSkill means rank noisy votes better than the Bradley-Terry
        refit does (measured at 80% labelers: about 0.02 Kendall tau at 1 vote per
        image, whatever the refit's prior); from there on the refit is better.
        """
        self._update(pool)
        if self.sorting and (pool.counts[pool.active] == 0).any():
            return pool.mu.copy()  # warm-up: the refit orders no better (measured)
        if self.sorting and self._sort.contradictions == 0:
            if self.sort_within == "refit":
                return self._sort.order_scores(self.refit_scores(pool))
            return self._sort.order_scores()
        if self._sparse(pool) and self.sparse_rank == "mu":
            return pool.mu.copy()
        fitted = self.refit_scores(pool)
        return pool.mu.copy() if fitted is None else fitted

    def refit_scores(self, pool: Pool) -> np.ndarray | None:
        """The refit of all votes: computed now (inline mode), else the last finished
        background refit moved by the online updates since (None before the first)."""
        if not self.background:
            return refit(pool, self.prior_scale)[0]
        self._update(pool)
        self._model.update(pool)
        return self._model.scores.copy() if self._model.ready else None

    def _before_sort(self, pool: Pool) -> bool:
        return pool.n_votes < self.sort_from * max(1, int(pool.active.sum()))

    def _sparse(self, pool: Pool) -> bool:
        """Under ``online_until`` votes per active image: too few votes for a refit."""
        return pool.n_votes < self.online_until * max(1, int(pool.active.sum()))

    # ---- picks ----------------------------------------------------------------------
    def _spot_check(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair]
    ) -> Pair | None:
        """Now and then a pair of known order, until enough votes could have contradicted."""
        if self.mode != "auto":
            return None
        if pool.n_votes < self._suspect_until:  # a contradiction was just forgiven
            return self._sort.check_pair(rng, avoid, close=True)
        due = pool.n_votes % self.check_every == self.check_every - 1
        if not due or self._sort.checked >= self.min_checks:
            return None
        return self._sort.check_pair(rng, avoid)

    def _warmup(self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair]) -> Pair | None:
        """Every image is seen once early: pair unseen images with each other."""
        unseen = np.flatnonzero(pool.active & (pool.counts == 0))
        if len(unseen) == 0:
            return None
        if len(unseen) >= 2:
            pair = random_pair(pool, rng, avoid, among=unseen, tries=8)
            if pair is not None and pair not in avoid:
                return pair
        a = int(unseen[int(rng.integers(len(unseen)))])
        pair = random_pair(pool, rng, avoid, among=np.flatnonzero(pool.active), tries=8)
        others = np.flatnonzero(pool.active)
        b = int(others[int(rng.integers(len(others)))])
        if b != a and key(a, b) not in avoid:
            return key(a, b)
        return pair

    def _eig_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair]
    ) -> Pair | None:
        """The most informative pair among a candidate subset of the refit (smart shuffle
        while the graph is sparse, see the module docstring)."""
        if self.sparse_pairs == "shuffle" and self._sparse(pool):
            return self._shuffle.next_pair(pool, rng, avoid)
        model = self._model
        model.update(pool)
        if not model.ready:  # the first background refit is still running
            return self._shuffle.next_pair(pool, rng, avoid)
        scores, sd = model.scores, model.sd
        order = model.order[pool.active[model.order]]
        m = len(order)
        if m < 2:
            return None
        a, b = candidate_pairs(
            order, pool.n, sd[order] ** 2, rng, anchors=self.anchors,
            random_anchors=self.random_anchors, neighbours=self.neighbours,
            random_partners=self.random_partners,
        )  # fmt: skip
        if self.objective == "eig":
            gain = expected_information_gain(
                scores[a], sd[a], scores[b], sd[b],
                beta=BT_PROBIT_BETA, tau=0.0, draw_probability=0.0,
            )  # fmt: skip
        else:  # least certain order: P(the refit orders the pair wrongly)
            z = np.abs(scores[a] - scores[b]) / np.hypot(sd[a], sd[b])
            gain = ndtr(-z)
        gain[a == b] = -np.inf
        # the per-item posteriors ignore that a pair's own votes already answered it
        # (a tie leaves two items close and uncertain, so its gain stays top): each
        # earlier vote on a pair divides its gain, so ties never freeze the selection
        asked = model.asked
        if asked:
            lo, hi = np.minimum(a, b).tolist(), np.maximum(a, b).tolist()
            gain = gain / (1.0 + np.array([asked.get(p, 0) for p in zip(lo, hi, strict=True)]))
        best = np.argsort(-gain, kind="stable")[:64].tolist()
        # a pair voted since the last refit has a stale gain (a tie does not even move
        # the online scores): others first, so no pair is asked again and again
        for fresh in (model.since, ()):
            for k in best:
                if gain[k] == -np.inf:
                    break
                pair = key(int(a[k]), int(b[k]))
                if pair not in avoid and pair not in fresh:
                    return pair
        return None
