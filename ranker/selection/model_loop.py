"""``model_loop``: pairs chosen to teach an online preference head, guarded by the votes.

With image embeddings and a base model attached, every vote refines one head shared by
all images (:mod:`ranker.online_head`), so each vote can move thousands of unvoted
images, not only the two shown. This selector:

- keeps an :class:`~ranker.online_head.OnlineHead` in step with the pool's vote log
  (one Laplace step per vote, a warm-started exact refit every ``refit_every`` votes,
  ``n / 50`` by default; refits happen at fixed vote counts, so replay after undo or a
  restart gives the same state; a snapshot of the whole state at each refit point,
  :mod:`~ranker.selection.loop_snapshots`, lets an undo or a reset restore the last one
  and replay only the votes after it, to the same floats; with a ``snapshot_file``,
  :mod:`~ranker.selection.snapshot_file`, the latest ones also go to disk, so a restart
  replays only the votes since the last refit);
- picks, over a candidate set (the most uncertain images and random ones, each paired
  with its neighbours in the current ranking and with random partners), the pair whose
  outcome carries the most mutual information about the scores, the part about the
  head (which moves every image) counted ``head_weight`` times;
- ranks by the head plus each image's votes (``ranking``): unvoted images by the model,
  voted ones by the people;
- guards against a model that does not help: each vote is first predicted by the head
  and by a votes-only Bradley-Terry fit (the same code without features), and the
  difference of their log losses is summed (the log of a prequential likelihood ratio).
  ``active`` picks and ranks (it replays the pool itself) until that evidence, counted
  from the start or from the last hand-back, favours the head by ``on_nats``. By
  Ville's inequality, were the votes-only forecasts right, the ratio is a non-negative
  martingale and reaches ``e^on_nats`` with probability at most ``e^-on_nats``: the
  default ``ln 100`` lets a model without signal take over in at most about 1 project
  in 100 (a useful model passes it within a few dozen votes). Once on, the model hands
  back when the evidence since it came on favours the votes alone by ``guard_nats``:
  the same test the other way round, so a head whose forecasts stay right is turned
  down by chance in at most about 1 project in 100. (A CUSUM test, restarted at the
  head's best point, turned it down every few thousand votes once both fits predicted
  equally well, and each hand-back swapped the ranking for ``active``'s.)
  Where the embeddings carry no signal the model never steers a pick, so the selector
  is ``active`` exactly.
- sets the head's correction scale by evidence (:func:`~ranker.online_head.evidence_prior`)
  at each refit, so a correction the votes do not support shrinks away.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy.special import ndtr

from ranker.online_head import PROBIT, HeadFeatures, HeadPrior, OnlineHead, evidence_prior
from ranker.pool import Pool
from ranker.selection.active import ActiveSelector, refit_prior
from ranker.selection.common import Pair, VoteSync, candidate_pairs, key, random_pair
from ranker.selection.loop_snapshots import HeadState, Snapshot, Snapshots
from ranker.selection.snapshot_file import KEEP, SnapshotFile, features_digest, fingerprint

GUARD_NATS = float(np.log(100.0))  # Ville: a false hand-over in at most ~1 run in 100
_C2 = np.pi * np.log(2.0) / 2.0  # h(Phi(x)) ~ exp(-x^2 / (2 C^2)), binary entropy in bits


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def pair_information(
    mean: np.ndarray, var_head: np.ndarray, var_offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual information (bits) of a vote with all parameters, and with the head alone.

    The score difference is ``N(mean, var_head + var_offsets)`` (logits). With the
    probit form of the logistic link, the information about everything is Houlsby et
    al.'s BALD closed form; about the head alone, the offsets' variance acts as extra
    noise on the outcome. Both are vectorised over candidate pairs.
    """
    m = PROBIT * mean
    vh, vu = PROBIT**2 * var_head, PROBIT**2 * var_offsets
    total_var = vh + vu
    marginal = _entropy_bits(ndtr(m / np.sqrt(1 + total_var)))
    given_all = np.sqrt(_C2 / (total_var + _C2)) * np.exp(-(m * m) / (2 * (total_var + _C2)))
    c2 = 1 + vu
    given_head = np.sqrt(_C2 * c2 / (vh + _C2 * c2)) * np.exp(-(m * m) / (2 * (vh + _C2 * c2)))
    return marginal - given_all, marginal - given_head


class ModelLoopSelector:
    """See the module docstring. ``features``: :class:`HeadFeatures` of the pool's images."""

    name = "model_loop"

    def __init__(
        self,
        features: HeadFeatures,
        *,
        prior: HeadPrior | None = None,
        refit_every: int | None = None,
        anchors: int = 24,
        random_anchors: int = 24,
        neighbours: int = 6,
        random_partners: int = 24,
        head_weight: float = 1.0,
        guard_nats: float = GUARD_NATS,
        on_nats: float = GUARD_NATS,
        evidence: bool = False,
        snapshots: bool = True,
        snapshot_file: SnapshotFile | None = None,
    ) -> None:
        self.features, self.prior = features, prior or HeadPrior()
        self.refit_every = refit_every
        self.anchors, self.random_anchors = anchors, random_anchors
        self.neighbours, self.random_partners = neighbours, random_partners
        self.head_weight, self.guard_nats = head_weight, guard_nats
        self.evidence, self.on_nats = evidence, on_nats
        self.fallback = ActiveSelector()
        self._snapshots = Snapshots() if snapshots else Snapshots(recent=0)
        self.snapshot_file = snapshot_file if snapshots else None
        self._phi_digest: str | None = None  # the features' part of the file's fingerprint
        self.reset()

    def reset(self) -> None:
        """Forget the state; the next call rebuilds it from the pool's log (an undo, an
        exclusion). The snapshots stay: the rebuild restores the last one the log still
        agrees with and replays only the votes after it (:mod:`.loop_snapshots`)."""
        self._sync = VoteSync()
        self._refit_at = 0  # vote count of the last refit (the restored snapshot's)
        self.head: OnlineHead | None = None
        self.votes_only: OnlineHead | None = None
        self.excess_loss = 0.0  # summed log loss of the head minus the votes-only fit
        self._on = False  # until the head has shown it predicts votes better
        # excess_loss where the current test started: the last switch (or the start)
        self._mark = 0.0
        self.switches: list[int] = []  # vote counts at which the model came on / went off
        self.order = np.zeros(0, dtype=np.int64)
        self.fallback.reset()

    # ---- state ----------------------------------------------------------------------
    @property
    def model_on(self) -> bool:
        """True once the head predicted new votes better than the votes alone (evidence
        ``on_nats`` since the start or the last hand-back), False again once the votes
        alone gained ``guard_nats`` on it since it came on. It starts False:
        ``active`` picks and ranks until the model has earned its place, so a model
        without signal never steers a pick."""
        return self._on

    def _start(self, pool: Pool) -> None:
        if self.features.n != pool.n:
            raise ValueError(f"features cover {self.features.n} images, the project has {pool.n}")
        self.head = OnlineHead(self.features, self.prior)
        # the votes-only fit: the same maths without features, with the refit's prior
        sd = float(np.median(refit_prior(pool)[1]))
        self.votes_only = OnlineHead(
            HeadFeatures(np.zeros((pool.n, 0), dtype=np.float32)), HeadPrior(offset_sd=sd)
        )
        self._sort()

    def _sort(self) -> None:
        self.order = np.argsort(-self.head.scores, kind="stable")

    def _update(self, pool: Pool) -> None:
        if self._sync.stale(pool) or self.head is None or self.head.phi.shape[0] != pool.n:
            self._rebuild(pool)
        every, taken = self._every(pool), False
        for k in self._sync.pending(pool):
            if k % every == 0 and k > self._refit_at:
                if self.evidence:
                    self.head.prior = evidence_prior(self.head.fit, self.head.prior)
                self.head.refit()
                self.votes_only.refit()
                self._sort()
                self._refit_at = k
                self._snapshots.take(self._snapshot(k))
                taken = True
            a, b, r = pool.first[k], pool.second[k], pool.result[k]
            p_head, p_votes = self.head.predict(a, b), self.votes_only.predict(a, b)
            self.before_vote(k, p_head, p_votes, r)
            self.excess_loss += _log_loss(p_head, r) - _log_loss(p_votes, r)
            self.head.add(a, b, r)
            self.votes_only.add(a, b, r)
            self._guard(k + 1)
        if taken and self.snapshot_file is not None and self._snapshots.items:
            self._write(pool)  # once per catch-up: a replay of 10,000 votes writes once

    def _every(self, pool: Pool) -> int:
        return self.refit_every or max(10, pool.n // 50)

    def _rebuild(self, pool: Pool) -> None:
        """Start again from the last valid snapshot (or from no vote at all)."""
        self.reset()
        self._start(pool)
        made_with = (
            pool.n, self.votes_only.prior, self.prior, self.evidence, self.guard_nats,
            self.on_nats,
        )  # fmt: skip
        snap = self._snapshots.latest(pool, made_with, self._every(pool))
        if snap is None and self.snapshot_file is not None:
            snap = self._from_file(pool)
        if snap is not None:
            snap.head.restore(self.head, snap.votes, pool)
            snap.votes_only.restore(self.votes_only, snap.votes, pool)
            self.excess_loss, self._on, self._mark = snap.excess_loss, snap.on, snap.mark
            self.switches = list(snap.switches)
            self._sync.seen = self._refit_at = snap.votes
            self._sort()
        self._snapshots.follow(self.head)
        self.rewind(self._sync.seen)

    def _digest(self, pool: Pool) -> str:
        """The snapshot file's fingerprint: the features, the settings key, the interval."""
        if self._phi_digest is None:
            self._phi_digest = features_digest(self.features.phi)
        return fingerprint(self._phi_digest, self._snapshots.key, self._every(pool))

    def _from_file(self, pool: Pool) -> Snapshot | None:
        """The last snapshot on disk valid for the pool's log, kept in memory too; None
        (a full replay) when there is none or what the subclass recorded is missing."""
        found, record = self.snapshot_file.load(self._digest(pool), pool, self.features.p)
        if not found or not self.restore_record(record, found[-1].votes):
            return None
        for snap in found:
            self._snapshots.take(snap)
        return found[-1]

    def _write(self, pool: Pool) -> None:
        items = self._snapshots.items[-KEEP:]
        log_of = (self.head.first, self.head.second, self.head.result)
        record = self.record_until(items[-1].votes)
        self.snapshot_file.save(self._digest(pool), items, log_of, record)

    def _snapshot(self, votes: int) -> Snapshot:
        return Snapshot(
            votes, HeadState.of(self.head), HeadState.of(self.votes_only),
            self.excess_loss, self._on, self._mark, tuple(self.switches),
        )  # fmt: skip

    def adopt(self, old: ModelLoopSelector) -> None:
        """Take over the snapshots of the selector this one replaces on the same features
        (a project reloaded after a settings change): its first replay then restores the
        last snapshot the log agrees with instead of replaying every vote. ``old`` is
        given up (the two would add snapshots to one store)."""
        if old.features is not self.features:
            raise ValueError("only a selector on the very same features can hand over")
        self._snapshots = old._snapshots
        self.reset()

    # ---- hooks for subclasses ---------------------------------------------------------
    def before_vote(self, k: int, p_head: float, p_votes: float, result: float) -> None:
        """Called with vote ``k``'s forecasts (P(first beats second) by the head and by the
        votes-only fit, each as it stood before that vote) before either takes it.

        Votes come in log order, each once per replay; a replay (undo, reset) first
        calls :meth:`rewind` with the vote it restarts at. Does nothing here."""

    def rewind(self, votes: int) -> None:
        """The state now stands just before vote ``votes`` (a rebuild restored a snapshot
        there, or started from 0): drop what :meth:`before_vote` recorded from that vote
        on. Does nothing here."""

    def record_until(self, votes: int) -> np.ndarray | None:
        """What :meth:`before_vote` recorded for the first ``votes`` votes, to be written
        with the snapshots (floats, one per vote); None here (nothing recorded)."""
        return None

    def restore_record(self, record: np.ndarray | None, votes: int) -> bool:
        """Take the first ``votes`` values of a record :meth:`record_until` wrote, as
        if the votes before ``votes`` had been replayed; False when it cannot (then the
        snapshot is not used). True here."""
        return True

    def _guard(self, votes: int) -> None:
        """One step of the two sequential tests (see the module docstring)."""
        if self._on:
            if self.excess_loss - self._mark > self.guard_nats:
                self._on, self._mark = False, self.excess_loss
                self.switches.append(votes)
        elif self._mark - self.excess_loss > self.on_nats:
            self._on, self._mark = True, self.excess_loss
            self.switches.append(votes)

    # ---- the interface ----------------------------------------------------------------
    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        self._update(pool)
        if not self.model_on:
            return self.fallback.next_pair(pool, rng, avoid)
        pair = self._best_pair(pool, rng, avoid)
        return pair if pair is not None else random_pair(pool, rng, avoid)

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        self._update(pool)
        # active keeps per-vote state of its own (its early auto-shuffle batches): it sees
        # every vote, so it picks as it would alone whenever the guard hands it the pairs
        self.fallback.observe(pool, first, second, result)

    def ranking(self, pool: Pool) -> np.ndarray:
        """Head + offsets (unvoted images ranked by the model); while guarded, ``active``'s
        until the model first came on, the votes-only fit's after it was turned down.

        Once the model has picked pairs, ``active``'s own state (a sort it was not asked
        to run) ranks poorly: a hand-back to it dropped strict tau from 0.89 to 0.77 at
        N = 1,000. The votes-only fit is the ranking the guard found better.
        """
        self._update(pool)
        if not self.model_on:
            if self.switches:
                return self.votes_only.scores.astype(np.float64)
            return self.fallback.ranking(pool)
        return self.head.scores.astype(np.float64)

    def voted(self, pool: Pool) -> np.ndarray:
        """True for images whose place rests on their own votes rather than on the model."""
        return pool.counts > 0

    # ---- picks ----------------------------------------------------------------------
    def _best_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair]
    ) -> Pair | None:
        order = self.order[pool.active[self.order]]
        m = len(order)
        if m < 2:
            return None
        # anchors: the images whose own offsets are least known (fewest votes), ties broken
        # at random; ranking by the head's variance too would pick the same extreme
        # images again and again and leave most offsets unlearned
        var = self.head.fit.var_u[order] * (1.0 + 1e-3 * rng.random(m))
        a, b = candidate_pairs(
            order, pool.n, var, rng, anchors=self.anchors,
            random_anchors=self.random_anchors, neighbours=self.neighbours,
            random_partners=self.random_partners,
        )  # fmt: skip
        mean, var_head, var_off = self.head.pair_moments(a, b)
        total, head = pair_information(mean, var_head, var_off)
        gain = total + (self.head_weight - 1.0) * head
        gain[a == b] = -np.inf
        for k in np.argsort(-gain, kind="stable")[:64].tolist():
            if gain[k] == -np.inf:
                break
            pair = key(int(a[k]), int(b[k]))
            if pair not in avoid:
                return pair
        return None


def _log_loss(p_first: float, result: float) -> float:
    p = min(max(p_first, 1e-9), 1 - 1e-9)
    return -(result * np.log(p) + (1 - result) * np.log1p(-p))
