"""The state pair selectors read: ratings and vote history as plain numpy arrays.

The service keeps one :class:`Pool` per project and updates it in place after every
vote (appending to the history, writing the two new ratings), so a selector sees
the current state without copying. Items are addressed by position ``0..n-1``;
excluded items stay in the arrays with ``active[i] == False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Outcome codes in the history arrays: the first item won, or a tie.
WIN, DRAW = 1.0, 0.5


@dataclass
class Pool:
    """Ratings and ordered vote history of one project.

    mu, sigma: current TrueSkill posteriors per item.
    active: False for excluded items (never selected).
    counts: comparisons per item (non-undone votes).
    first, second, result: the vote history in order; ``result[k]`` is 1.0 when
        ``first[k]`` won and 0.5 for a tie (a loss is stored with the winner first).
    prior_mu, prior_sigma: the rating environment's prior, for refits.
    beta, tau, draw_probability: the rating environment, for hypothetical updates.
    """

    mu: np.ndarray
    sigma: np.ndarray
    active: np.ndarray
    counts: np.ndarray
    prior_mu: float = 0.0
    prior_sigma: float = 25.0 / 3.0
    beta: float = 25.0 / 6.0
    tau: float = 25.0 / 300.0
    draw_probability: float = 0.10
    first: list[int] = field(default_factory=list)
    second: list[int] = field(default_factory=list)
    result: list[float] = field(default_factory=list)
    # Per-item starting ratings when a project is pre-ranked (None: everyone at the
    # prior). Replays (selector state, refits) start from these, not from prior_mu.
    initial_mu: np.ndarray | None = None
    initial_sigma: np.ndarray | None = None

    @classmethod
    def empty(
        cls,
        n: int,
        *,
        prior_mu: float = 0.0,
        prior_sigma: float = 25.0 / 3.0,
        beta: float = 25.0 / 6.0,
        tau: float = 25.0 / 300.0,
        draw_probability: float = 0.10,
    ) -> Pool:
        return cls(
            mu=np.full(n, prior_mu, dtype=np.float64),
            sigma=np.full(n, prior_sigma, dtype=np.float64),
            active=np.ones(n, dtype=bool),
            counts=np.zeros(n, dtype=np.int64),
            prior_mu=prior_mu,
            prior_sigma=prior_sigma,
            beta=beta,
            tau=tau,
            draw_probability=draw_probability,
        )

    @property
    def n(self) -> int:
        return len(self.mu)

    @property
    def n_votes(self) -> int:
        return len(self.result)

    def record(self, winner: int, loser: int, draw: bool) -> None:
        """Append one vote to the history (ratings are written by the caller)."""
        self.first.append(winner)
        self.second.append(loser)
        self.result.append(DRAW if draw else WIN)
        self.counts[winner] += 1
        self.counts[loser] += 1

    def history(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The vote history as arrays (first, second, result)."""
        return (
            np.asarray(self.first, dtype=np.int64),
            np.asarray(self.second, dtype=np.int64),
            np.asarray(self.result, dtype=np.float64),
        )

    def seed(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        """Start every item from its own prior (pre-ranking by a model), before any vote."""
        if self.n_votes:
            raise ValueError("seed ratings before the first vote; replay the log to re-seed")
        mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
        if mu.shape != (self.n,) or sigma.shape != (self.n,):
            raise ValueError(f"seed needs mu and sigma of length {self.n}")
        self.initial_mu, self.initial_sigma = mu.copy(), sigma.copy()
        self.mu[:], self.sigma[:] = mu, sigma

    def start_ratings(self) -> tuple[np.ndarray, np.ndarray]:
        """The ratings before the first vote (copies): the starting point of any replay."""
        if self.initial_mu is not None and self.initial_sigma is not None:
            return self.initial_mu.copy(), self.initial_sigma.copy()
        return np.full(self.n, self.prior_mu), np.full(self.n, self.prior_sigma)

    def grow(self, extra: int) -> None:
        """Add ``extra`` new items at the prior (images added to a running project)."""
        self.mu = np.concatenate([self.mu, np.full(extra, self.prior_mu)])
        self.sigma = np.concatenate([self.sigma, np.full(extra, self.prior_sigma)])
        self.active = np.concatenate([self.active, np.ones(extra, dtype=bool)])
        self.counts = np.concatenate([self.counts, np.zeros(extra, dtype=np.int64)])
        if self.initial_mu is not None and self.initial_sigma is not None:
            self.initial_mu = np.concatenate([self.initial_mu, np.full(extra, self.prior_mu)])
            self.initial_sigma = np.concatenate(
                [self.initial_sigma, np.full(extra, self.prior_sigma)]
            )
