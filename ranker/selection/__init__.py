"""Pair selection behind one interface, chosen per project.

``make_selector(name)`` returns an object the service asks for the next pair; the
benchmark (``bench/rank_bench.py``) drives the very same objects. Strategies:

- ``active`` (default): warm-up, then quicksort while labelers are consistent, then
  expected information gain on a Bradley-Terry refit of all votes once they are not.
- ``refit_eig``: only the refit-EIG half of ``active`` (a whole-graph variant).
- ``smart_shuffle``, ``auto_shuffle``, ``elimination``: Image Ranker's modes.
- ``random``: uniformly random pairs.
- ``budget``: a Rapidata-style job (comparison budget, share of random matchups).

Every selector derives its state from the pool (a replay of the vote log), so undo
and restart give the same behaviour; ``reset()`` drops caches after an undo.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

import numpy as np
from scipy.special import ndtr

from ranker.pool import Pool
from ranker.selection.active import ActiveSelector, refit
from ranker.selection.common import Pair
from ranker.selection.imageranker import (
    AutoShuffleSelector,
    BudgetSelector,
    EliminationSelector,
    RandomSelector,
    SmartShuffleSelector,
)
from ranker.tsmath import prior_from_scores

__all__ = [
    "STRATEGIES",
    "Selector",
    "make_selector",
    "ranking_confidence",
    "neighbour_confidence",
    "prior_from_scores",
    "refit",
]


class Selector(Protocol):
    name: str

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        """Two distinct active positions (sorted), or None when the strategy is done."""
        ...

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        """Called after each vote is applied to the pool."""
        ...

    def reset(self) -> None:
        """Drop caches (after undo or a settings change); state is rebuilt from the pool."""
        ...


_FACTORIES: dict[str, Callable[..., Selector]] = {
    "active": ActiveSelector,
    "smart_shuffle": SmartShuffleSelector,
    "auto_shuffle": AutoShuffleSelector,
    "elimination": EliminationSelector,
    "random": RandomSelector,
    "budget": BudgetSelector,
    "refit_eig": lambda **kw: _named(ActiveSelector(mode="refit", **kw), "refit_eig"),
}
STRATEGIES: tuple[str, ...] = tuple(_FACTORIES)


def _named(selector: ActiveSelector, name: str) -> ActiveSelector:
    selector.name = name
    return selector


class Budgeted:
    """Any selector with a comparison budget: None once ``budget`` votes are in."""

    def __init__(self, inner: Selector, budget: int) -> None:
        if budget < 0:
            raise ValueError(f"budget must be a non-negative number of votes, got {budget}")
        self.inner, self.budget, self.name = inner, budget, inner.name

    def next_pair(
        self, pool: Pool, rng: np.random.Generator, avoid: Collection[Pair] = ()
    ) -> Pair | None:
        if pool.n_votes >= self.budget:
            return None
        return self.inner.next_pair(pool, rng, avoid)

    def observe(self, pool: Pool, first: int, second: int, result: float) -> None:
        self.inner.observe(pool, first, second, result)

    def reset(self) -> None:
        self.inner.reset()

    def __getattr__(self, attr: str):  # ranking(), sorting, ... of the wrapped selector
        return getattr(self.inner, attr)


def make_selector(name: str, **params) -> Selector:
    """The selector called ``name``; ``budget=`` (total votes) works with every strategy.

    Example:
        >>> make_selector("budget", budget=500, random_share=0.5).name
        'budget'
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown pair strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    budget = params.pop("budget", None)
    if name == "budget":
        return BudgetSelector(budget=budget, **params)
    selector = _FACTORIES[name](**params)
    return selector if budget is None else Budgeted(selector, int(budget))


def neighbour_confidence(scores: np.ndarray, sd: np.ndarray) -> float:
    """Expected share of neighbouring pairs (in score order) that are ordered correctly.

    For neighbours a above b, ``P(a truly above b) = Phi((s_a - s_b) / sqrt(sd_a^2 +
    sd_b^2))`` under independent Gaussian posteriors. 0.5 means the order is a coin
    flip everywhere; near 1 means more votes will barely change it.
    """
    if len(scores) < 2:
        return 1.0
    order = np.argsort(-scores, kind="stable")
    s, v = scores[order], sd[order] ** 2
    gap = s[:-1] - s[1:]
    return float(ndtr(gap / np.sqrt(v[:-1] + v[1:])).mean())


def ranking_confidence(pool: Pool) -> float:
    """:func:`neighbour_confidence` of the active items' TrueSkill posteriors (0.5..1)."""
    items = np.flatnonzero(pool.active)
    return neighbour_confidence(pool.mu[items], pool.sigma[items])
