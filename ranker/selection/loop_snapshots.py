"""Snapshots of the model-in-the-loop selector, so undo and rebuilds replay a few votes.

:class:`~ranker.selection.model_loop.ModelLoopSelector` is a replay of the vote log: one
online step per vote and an exact refit at fixed vote counts. When the log shrinks (an
undo) or the selector is reset, replaying every vote again costs seconds at 10,000
images and 10,000 votes. A snapshot is the selector's whole vote-derived state just
after a refit (both fits, the guard's evidence, its switches), and the state after
vote ``k`` depends only on votes ``0..k-1``, so restoring the last snapshot the new log
still agrees with and replaying the votes after it gives the very state (same floats) a
replay from the start would.

A snapshot taken at refit point ``k`` (just before vote ``k`` takes its online step) is
valid for a log that has more than ``k`` votes (a log of exactly ``k`` votes has not
reached that refit yet) and agrees with the votes it was made from on its first ``k``.

Memory: a snapshot holds four length-``n`` arrays per fit (the offsets, their
variances, the scores and the head's variance per image: 24 bytes per image per fit,
about 0.5 MB at 10,000 images). The store keeps the ``recent`` latest snapshots (an
undo of one of the last votes replays under one refit interval of votes) and at most
``spread`` older ones on a regular grid of refit points whose spacing doubles whenever
they would be more (an older undo, e.g. of a labeler who stopped long ago, replays at
most a spacing's worth of votes). With the defaults that is at most 16 snapshots, about
8 MB at 10,000 images, whatever the number of votes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace

import numpy as np

from ranker.online_head import HeadFit, HeadPrior, OnlineHead
from ranker.pool import Pool

RECENT = 4  # latest snapshots kept: an undo of a recent vote replays < 1 refit interval
SPREAD = 12  # older snapshots kept, on a grid whose spacing doubles as votes grow


@dataclass(frozen=True)
class HeadState:
    """One :class:`OnlineHead`'s vote-derived state (copies: the head mutates its arrays)."""

    fit: HeadFit
    scores: np.ndarray
    head_var: np.ndarray
    prior: HeadPrior

    @classmethod
    def of(cls, head: OnlineHead) -> HeadState:
        return cls(_copy(head.fit), head.scores.copy(), head.head_var.copy(), head.prior)

    def restore(self, head: OnlineHead, votes: int, pool: Pool) -> None:
        """Put this state into ``head`` with the pool's first ``votes`` votes as its log."""
        head.fit, head.prior = _copy(self.fit), self.prior
        head.scores, head.head_var = self.scores.copy(), self.head_var.copy()
        head.first, head.second = list(pool.first[:votes]), list(pool.second[:votes])
        head.result = list(pool.result[:votes])


def _copy(fit: HeadFit) -> HeadFit:
    return replace(
        fit, beta=fit.beta.copy(), cov=fit.cov.copy(), u=fit.u.copy(), var_u=fit.var_u.copy()
    )


@dataclass(frozen=True)
class Snapshot:
    """The selector just after the refit at ``votes`` (see the module docstring)."""

    votes: int
    head: HeadState
    votes_only: HeadState
    excess_loss: float
    on: bool
    mark: float
    switches: tuple[int, ...]


class Snapshots:
    """The snapshots of one selector, and the votes and settings they were made from.

    ``key`` names everything besides the votes that the state depends on (the number of
    images, the priors, the refit interval): snapshots made under another key are never
    restored. ``recent`` 0 turns snapshots off (every rebuild replays from the start).
    """

    def __init__(self, recent: int = RECENT, spread: int = SPREAD) -> None:
        self.recent, self.spread = recent, spread
        self.clear()

    def clear(self) -> None:
        self.items: list[Snapshot] = []
        self.key: Hashable = None
        self.every = 1  # the refit interval (votes) the snapshots' vote counts are on
        self.stride = 1  # spacing of the older snapshots, in refit intervals
        self._log: tuple[list, list, list] = ([], [], [])

    def follow(self, head: OnlineHead) -> None:
        """The log the coming snapshots are made from: ``head``'s own (it grows with it)."""
        self._log = (head.first, head.second, head.result)

    def take(self, snapshot: Snapshot) -> None:
        """Keep a new snapshot (later than every kept one), thinning the older ones."""
        if self.recent <= 0:
            return
        self.items.append(snapshot)
        older = self.items[: -self.recent]
        while len([s for s in older if self._on_grid(s)]) > self.spread:
            self.stride *= 2
        self.items = [s for s in older if self._on_grid(s)] + self.items[-self.recent :]

    def _on_grid(self, snapshot: Snapshot) -> bool:
        return (snapshot.votes // self.every) % self.stride == 0

    def latest(self, pool: Pool, key: Hashable, every: int) -> Snapshot | None:
        """The last snapshot valid for the pool's log under ``key``; later ones are
        dropped (the replay makes them again). None when there is none."""
        if key != self.key or every != self.every:
            self.clear()
            self.key, self.every = key, every
            return None
        agree = _common_prefix(self._log, pool)
        self.items = [s for s in self.items if s.votes <= agree and s.votes < pool.n_votes]
        return self.items[-1] if self.items else None

    def nbytes(self) -> int:
        """Memory the kept snapshots hold (their arrays), for the docs and the bench."""
        total = 0
        for s in self.items:
            for h in (s.head, s.votes_only):
                arrays = (h.fit.beta, h.fit.cov, h.fit.u, h.fit.var_u, h.scores, h.head_var)
                total += sum(a.nbytes for a in arrays)
        return total


def _common_prefix(log: tuple[list, list, list], pool: Pool) -> int:
    """How many of the first votes of ``log`` and of the pool's history are the same."""
    m = min(len(log[2]), pool.n_votes)
    same = np.ones(m, dtype=bool)
    for mine, theirs in zip(log, (pool.first, pool.second, pool.result), strict=True):
        same &= np.asarray(mine[:m]) == np.asarray(theirs[:m])
    differ = np.flatnonzero(~same)
    return int(differ[0]) if differ.size else m
