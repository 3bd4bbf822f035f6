"""TrueSkill ratings derived from the vote log, with the real ``trueskill`` package.

Ratings are a deterministic replay of the non-undone votes in order. The hot path
(:meth:`Ratings.apply`) performs exactly the update the replay would, so an
incremental state always equals a full replay; undo of the latest vote restores the
saved previous ratings bit for bit, any other undo replays.

Example:
    >>> r = Ratings.replay(2, [(0, 1, False)], RatingConfig.preset("image_ranker"))
    >>> round(r.pool.mu[0], 3), round(r.pool.sigma[0], 3)
    (4.394, 7.169)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import trueskill

from ranker.pool import Pool

PRESETS: dict[str, dict[str, float]] = {
    # The trueskill package's own defaults.
    "trueskill": {
        "mu": 25.0,
        "sigma": 25.0 / 3.0,
        "beta": 25.0 / 6.0,
        "tau": 25.0 / 300.0,
        "draw_probability": 0.10,
    },
    # Image Ranker: global default environment, but every image starts at (0, 8.33).
    "image_ranker": {
        "mu": 0.0,
        "sigma": 8.33,
        "beta": 25.0 / 6.0,
        "tau": 25.0 / 300.0,
        "draw_probability": 0.10,
    },
}
DEFAULT_PRESET = "image_ranker"


@dataclass(frozen=True)
class RatingConfig:
    """A TrueSkill environment: prior (mu, sigma), performance noise beta, drift tau."""

    mu: float = PRESETS[DEFAULT_PRESET]["mu"]
    sigma: float = PRESETS[DEFAULT_PRESET]["sigma"]
    beta: float = PRESETS[DEFAULT_PRESET]["beta"]
    tau: float = PRESETS[DEFAULT_PRESET]["tau"]
    draw_probability: float = PRESETS[DEFAULT_PRESET]["draw_probability"]

    @classmethod
    def preset(cls, name: str) -> RatingConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown rating preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**PRESETS[name])

    @classmethod
    def from_settings(cls, settings: dict) -> RatingConfig:
        """Build from project settings: a preset name plus optional overrides."""
        base = asdict(cls.preset(settings.get("rating_preset", DEFAULT_PRESET)))
        base.update({k: float(settings[k]) for k in base if k in settings})
        if base["sigma"] <= 0 or base["beta"] <= 0 or base["tau"] < 0:
            raise ValueError("rating settings need sigma > 0, beta > 0 and tau >= 0")
        if not 0 <= base["draw_probability"] < 1:
            raise ValueError("draw_probability must be in [0, 1)")
        return cls(**base)

    def environment(self) -> trueskill.TrueSkill:
        return trueskill.TrueSkill(
            mu=self.mu,
            sigma=self.sigma,
            beta=self.beta,
            tau=self.tau,
            draw_probability=self.draw_probability,
        )


class Ratings:
    """Current ratings of ``n`` items plus the undo information for recent votes."""

    def __init__(
        self,
        n: int,
        config: RatingConfig,
        start: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """``start``: per-item starting (mu, sigma), e.g. a model pre-ranking; default prior."""
        self.config = config
        self.env = config.environment()
        self.pool = Pool.empty(
            n,
            prior_mu=config.mu,
            prior_sigma=config.sigma,
            beta=config.beta,
            tau=config.tau,
            draw_probability=config.draw_probability,
        )
        if start is not None:
            self.pool.seed(*start)
        self.wins = [0] * n
        self.losses = [0] * n
        self.ties = [0] * n
        # (winner, loser, draw, previous ratings) for each applied vote, newest last.
        self._undo: list[tuple[int, int, bool, tuple[float, float, float, float]]] = []

    @classmethod
    def replay(
        cls,
        n: int,
        votes: Iterable[tuple[int, int, bool]],
        config: RatingConfig,
        start: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Ratings:
        """Ratings after applying ``(winner, loser, draw)`` votes in order."""
        ratings = cls(n, config, start)
        for winner, loser, draw in votes:
            ratings.apply(winner, loser, draw)
        return ratings

    def apply(self, winner: int, loser: int, draw: bool = False) -> None:
        """One two-player update; for a draw the order of the pair does not matter."""
        if winner == loser:
            raise ValueError("an image cannot be compared with itself")
        mu, sigma = self.pool.mu, self.pool.sigma
        before = (mu[winner], sigma[winner], mu[loser], sigma[loser])
        new_w, new_l = self.env.rate_1vs1(
            self.env.create_rating(mu[winner], sigma[winner]),
            self.env.create_rating(mu[loser], sigma[loser]),
            drawn=draw,
        )
        mu[winner], sigma[winner] = new_w.mu, new_w.sigma
        mu[loser], sigma[loser] = new_l.mu, new_l.sigma
        self.pool.record(winner, loser, draw)
        if draw:
            self.ties[winner] += 1
            self.ties[loser] += 1
        else:
            self.wins[winner] += 1
            self.losses[loser] += 1
        self._undo.append((winner, loser, draw, before))

    def undo_last(self) -> None:
        """Revert the most recent applied vote exactly (bit for bit)."""
        winner, loser, draw, before = self._undo.pop()
        mu, sigma = self.pool.mu, self.pool.sigma
        mu[winner], sigma[winner], mu[loser], sigma[loser] = before
        pool = self.pool
        for history in (pool.first, pool.second, pool.result):
            history.pop()
        pool.counts[winner] -= 1
        pool.counts[loser] -= 1
        if draw:
            self.ties[winner] -= 1
            self.ties[loser] -= 1
        else:
            self.wins[winner] -= 1
            self.losses[loser] -= 1

    def grow(self, extra: int) -> None:
        """Room for ``extra`` new items at the prior."""
        self.pool.grow(extra)
        self.wins += [0] * extra
        self.losses += [0] * extra
        self.ties += [0] * extra

    def conservative(self, i: int) -> float:
        return float(self.pool.mu[i] - 3.0 * self.pool.sigma[i])
