"""A simulated project whose images have embeddings: the world of ``bench/loop_bench.py``.

N images with d-dimensional embeddings ``x_i ~ N(0, diag(lambda))``, a power-law
spectrum ``lambda_k ~ k^-spectrum`` (image embeddings spread their variance over a few
hundred directions, not evenly over all of them). Directions in the world (the
people's taste ``t`` and the base head's error ``h``) are drawn like the difference of
two random images, ``sqrt(lambda) * N(0, I)``, so they live where the images vary.

- True quality ``q``, standardised, and ``x.t = rho q + sqrt(1 - rho^2) r`` with a
  residual ``r`` independent of ``q``: ``x.t`` is the best possible linear head.
- **Agreement** is what a person can measure: the share of the labelers' own (noisy)
  votes on random pairs that a head orders the same way, i.e. its test accuracy on
  their pairs (JoyQuality's personal fine-tune reached 80% this way). For Gaussian
  scores and Thurstone labelers who agree with ``q`` on a share ``L`` of random pairs,
  a head correlated ``rho`` with ``q`` agrees with their votes on
  ``1/2 + arcsin(rho sin(pi (L - 1/2))) / pi`` of random pairs (the orthant
  probability of two correlated Gaussians; exact, no approximation). So with 90%
  labelers a head agreeing 90% is the truth itself (``rho = 1``), 85% means
  ``rho = 0.937`` (it orders 88.6% of random pairs like the truth) and 80% means
  ``rho = 0.851`` (82.2%); the base head's 75% means ``rho = 0.744`` (76.6%).
  :func:`truth_agreement` converts. Quality is drawn first and the embeddings are
  built around it, so for one seed every world has the same ``q`` and a strategy that
  ignores embeddings (``active``) sees the same project in all of them.
- The base head ``w0 = c t + sqrt(1 - c^2) h`` (``h`` orthogonal to ``t`` in the
  embeddings' covariance) agrees with the votes on 75% of random pairs, by the same
  definition.
- The no-signal world (``best_agreement=None``): ``q`` independent of the embeddings,
  the base head a random direction (50%).

The axes are the principal axes; a random rotation would change nothing for a head that
is rotation-invariant (:class:`ranker.online_head.HeadFeatures` works on principal
coordinates) and would cost an N x d x d product per world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def correlation(agreement: float) -> float:
    """Gaussian scores that order random pairs alike with probability ``agreement``."""
    return math.sin(math.pi * (agreement - 0.5))


def quality_correlation(agreement: float, labeler_agreement: float) -> float:
    """Correlation with ``q`` of a head agreeing ``agreement`` with the labelers' votes."""
    rho = correlation(agreement) / correlation(labeler_agreement)
    if not 0.0 <= rho <= 1.0 + 1e-12:
        raise ValueError(
            f"no head agrees {agreement:.0%} with labelers who agree {labeler_agreement:.0%}"
            " with the truth"
        )
    return min(rho, 1.0)


def truth_agreement(agreement: float, labeler_agreement: float) -> float:
    """Share of random pairs that a head agreeing ``agreement`` with the votes orders
    like the truth (the orthant probability, see the module docstring)."""
    return 0.5 + math.asin(quality_correlation(agreement, labeler_agreement)) / math.pi


@dataclass
class FeatureWorld:
    quality: np.ndarray  # (n,) float64, standardised
    embeddings: np.ndarray  # (n, d) float32
    base_scores: np.ndarray  # (n,) the base model's scores (x . w0)
    best_scores: np.ndarray  # (n,) the best linear head's scores (x . t)


def quality(n: int, seed: int) -> np.ndarray:
    """The hidden qualities of seed ``seed``: the same in every world."""
    q = np.random.default_rng([seed, 0]).standard_normal(n)
    return (q - q.mean()) / q.std()


def make_world(
    n: int,
    d: int,
    best_agreement: float | None,
    seed: int,
    *,
    base_agreement: float = 0.75,
    labeler_agreement: float = 0.9,
    spectrum: float = 1.0,
) -> FeatureWorld:
    """The world described in the module docstring (``best_agreement`` None: no signal).

    ``best_agreement`` and ``base_agreement`` are agreements with the votes of Thurstone
    labelers who agree with the truth on ``labeler_agreement`` of random pairs (1.0:
    noiseless labelers, agreement with the truth itself).
    """
    q = quality(n, seed)
    tag = 0 if best_agreement is None else int(round(1000 * best_agreement))
    rng = np.random.default_rng([seed, 1, d, tag])
    lam = np.arange(1, d + 1, dtype=np.float64) ** -spectrum
    lam /= lam.sum()
    x = rng.standard_normal((n, d)).astype(np.float32) * np.sqrt(lam).astype(np.float32)
    t = np.sqrt(lam) * rng.standard_normal(d)
    h = np.sqrt(lam) * rng.standard_normal(d)
    h -= (h @ (lam * t)) / (t @ (lam * t)) * t  # independent of x.t
    sd_t, sd_h = math.sqrt(t @ (lam * t)), math.sqrt(h @ (lam * h))
    rho = 0.0 if best_agreement is None else quality_correlation(best_agreement, labeler_agreement)
    target = rho * q + math.sqrt(1 - rho * rho) * rng.standard_normal(n)
    # condition the Gaussian embeddings on x.t = target (a regression on x.t)
    g = x.astype(np.float64) @ t
    x += (((target * sd_t - g) / sd_t**2)[:, None] * (lam * t)[None, :]).astype(np.float32)
    c = 0.0
    if best_agreement is not None:
        c = quality_correlation(base_agreement, labeler_agreement) / rho
    if not 0.0 <= c <= 1.0:
        raise ValueError("the best head must agree at least as often as the base head")
    w0 = c * t / sd_t + math.sqrt(1 - c * c) * h / sd_h
    xd = x.astype(np.float64)
    return FeatureWorld(q, x, xd @ w0, xd @ t)
