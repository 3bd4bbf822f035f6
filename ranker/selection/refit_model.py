"""The Bradley-Terry refit as pair selection and ranking use it: fresh, cheap, off the request path.

A full refit of all votes (``common.maths``) takes about 0.7 s at 100,000 images, so
no pick, vote or leaderboard view may wait for one. :class:`RefitModel` keeps the
last finished refit and moves the two items of every later vote by the closed-form
Gaussian update, which costs microseconds. Refits happen at fixed vote counts
(multiples of ``every``):

- ``background=False`` (the simulator, the benchmark, the tests): the refit runs
  inline when its vote count is reached, so the state after any history is the same
  whether reached live or by replay, and benchmark numbers are reproducible.
- ``background=True`` (the app): once images + votes reach ``INLINE_SIZE``, it runs in
  a thread on a copy of the votes; until it finishes the previous refit is served
  (with the online updates since), and before the first one finishes :attr:`ready`
  is False and callers fall back to TrueSkill mu (ranking) or smart shuffle (pairs).
  Below that a refit takes under about 30 ms and runs inline, so small projects (the
  demo, a one-shot CLI export) show the same order whichever route asks.
"""

from __future__ import annotations

import threading

import numpy as np

from common.maths import BT_PROBIT_BETA, bt_fit
from ranker.pool import DRAW, Pool
from ranker.selection.common import Pair, VoteSync, key
from ranker.tsmath import rate

INLINE_SIZE = 20_000  # below this many images + votes a refit runs inline even in background


def refit_prior(pool: Pool, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-item prior (mean, sd) of the refit, in logit units, from the pool's start ratings.

    TrueSkill's ``P(i beats j) = Phi((mu_i - mu_j) / (sqrt(2) beta))`` is about
    ``sigmoid(k (mu_i - mu_j))`` with ``k = 1.702 / (sqrt(2) beta)``: the same scale
    maps a pre-ranked pool's seeded ratings into the refit.
    """
    k = 1.702 / (np.sqrt(2.0) * pool.beta)
    mu0, sd0 = pool.start_ratings()
    return k * (mu0 - pool.prior_mu), scale * k * sd0


def refit(pool: Pool, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Bradley-Terry MAP scores and variances of all votes, with the pool's prior."""
    first, second, result = pool.history()
    mean, sd = refit_prior(pool, scale)
    return bt_fit(pool.n, first, second, result, prior_sd=sd, prior_mean=mean)


class _Job:
    """One refit of a snapshot of the votes, run by a daemon thread."""

    def __init__(self, n: int, at: int, votes: tuple, prior: tuple) -> None:
        self.n, self.at = n, at
        self.result: tuple[np.ndarray, np.ndarray] | None = None
        self.thread = threading.Thread(
            target=self._run, args=(votes, prior), name="refit", daemon=True
        )
        self.thread.start()

    def _run(self, votes: tuple, prior: tuple) -> None:
        first, second, result = votes
        mean, sd = prior
        self.result = bt_fit(self.n, first, second, result, prior_sd=sd, prior_mean=mean)


class RefitModel:
    """Refit scores kept fresh cheaply (see the module docstring)."""

    def __init__(self, every: int, prior_scale: float = 1.0, background: bool = False) -> None:
        self.every = max(1, every)
        self.prior_scale = prior_scale
        self.background = background
        self.sync = VoteSync()
        self.at = -1  # vote count of the refit being served
        self.scores = np.zeros(0)
        self.sd = np.zeros(0)
        self.order = np.zeros(0, dtype=np.int64)  # active items by score at the last refit
        self.pos = np.zeros(0, dtype=np.int64)
        self.since: set[Pair] = set()  # pairs voted since the last full refit
        self.asked: dict[Pair, int] = {}  # votes per pair, for all of history
        self._asked_sync = VoteSync()
        self._job: _Job | None = None

    @property
    def ready(self) -> bool:
        """True once a refit is being served (always after ``update`` when inline)."""
        return self.at >= 0

    def update(self, pool: Pool) -> None:
        if self._asked_sync.stale(pool):
            self.asked, self._asked_sync = {}, VoteSync()
        for k in self._asked_sync.pending(pool):
            pair = key(pool.first[k], pool.second[k])
            self.asked[pair] = self.asked.get(pair, 0) + 1
        grown = self.ready and len(self.scores) != pool.n
        if self.sync.stale(pool) or grown or self.at > pool.n_votes:
            self.sync, self.at, self._job = VoteSync(), -1, None  # undo or new images
            self.scores = np.zeros(0)
        at = pool.n_votes - pool.n_votes % self.every
        if self.background and pool.n + at >= INLINE_SIZE:
            self._collect(pool)
            if at > self.at and self._job is None:
                self._launch(pool, at)
            if not self.ready:
                return
        elif at > self.at:
            first, second, result = pool.history()
            mean, sd = refit_prior(pool, self.prior_scale)
            s, v = bt_fit(
                pool.n, first[:at], second[:at], result[:at], prior_sd=sd, prior_mean=mean
            )
            self._install(pool, at, s, v)
        for k in self.sync.pending(pool):
            a, b, r = pool.first[k], pool.second[k], pool.result[k]
            self.since.add(key(a, b))
            if r == DRAW:
                continue  # the logistic model has no draw margin; the next refit uses ties
            ma, sa, mb, sb = rate(
                self.scores[a], self.sd[a], self.scores[b], self.sd[b], 1.0,
                beta=BT_PROBIT_BETA, tau=0.0, draw_probability=0.0,
            )  # fmt: skip
            self.scores[a], self.sd[a], self.scores[b], self.sd[b] = ma, sa, mb, sb

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running background refit is done (tests and benchmarks)."""
        if self._job is not None:
            self._job.thread.join(timeout)

    def _launch(self, pool: Pool, at: int) -> None:
        votes = (
            np.asarray(pool.first[:at], dtype=np.int64),
            np.asarray(pool.second[:at], dtype=np.int64),
            np.asarray(pool.result[:at], dtype=np.float64),
        )
        self._job = _Job(pool.n, at, votes, refit_prior(pool, self.prior_scale))

    def _collect(self, pool: Pool) -> None:
        job = self._job
        if job is None or job.result is None:
            return
        self._job = None
        if job.n == pool.n and job.at <= pool.n_votes and job.at > self.at:
            self._install(pool, job.at, *job.result)

    def _install(self, pool: Pool, at: int, s: np.ndarray, v: np.ndarray) -> None:
        self.scores, self.sd = s.copy(), np.sqrt(v)
        items = np.flatnonzero(pool.active)
        self.order = items[np.argsort(-s[items], kind="stable")]
        self.pos = np.full(pool.n, -1, dtype=np.int64)
        self.pos[self.order] = np.arange(len(self.order))
        self.at = at
        self.sync.seen = at  # the votes after ``at`` are replayed by the online update
        self.since = set()
