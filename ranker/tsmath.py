"""Closed-form two-player TrueSkill on numpy arrays.

The ``trueskill`` package runs a factor graph per call (about 0.3 ms). For two
players that graph has one difference factor, so its fixed point has a closed form
(derived in docs/pair-selection.md). Writing it on arrays lets a pair sampler score thousands of
hypothetical votes in one call and lets the simulator rate millions of votes fast,
while staying within ~1e-6 of ``trueskill.TrueSkill.rate_1vs1``.

Notation: for first item ``a`` and second item ``b``, ``s2 = sigma^2 + tau^2``,
``c^2 = 2 beta^2 + s2_a + s2_b``, ``t = (mu_a - mu_b) / c`` and the draw margin
in units of ``c`` is ``e = eps / c``.

Example:
    >>> mu, s = rate_pair(0.0, 8.33, 0.0, 8.33, WIN)
    >>> [round(float(x), 3) for x in (mu[0], s[0], mu[1], s[1])]
    [4.394, 7.169, -4.394, 7.169]
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri
from scipy.stats import rankdata

WIN, DRAW = 1.0, 0.5
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def draw_margin(draw_probability: float, beta: float) -> float:
    """The performance-difference margin under which a two-player game is a draw."""
    if draw_probability <= 0.0:
        return 0.0
    return float(ndtri((draw_probability + 1.0) / 2.0) * math.sqrt(2.0) * beta)


def _log_pdf(x: np.ndarray) -> np.ndarray:
    return -0.5 * x * x - _LOG_SQRT_2PI


def v_w_win(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance corrections of a Gaussian truncated to ``(0, inf)`` shifted by ``x``.

    ``v = pdf(x) / cdf(x)`` computed in log space so that big upsets (x << 0) stay
    finite (v -> -x, w -> 1) instead of dividing by an underflowed cdf.
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.exp(_log_pdf(x) - log_ndtr(x))
    w = v * (v + x)
    return v, np.clip(w, 0.0, 1.0)


def v_w_draw(t: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corrections for a Gaussian truncated to ``(-e, e)`` around mean ``t`` (a draw)."""
    t = np.asarray(t, dtype=np.float64)
    sign = np.where(t < 0, -1.0, 1.0)
    at = np.abs(t)
    a, b = e - at, -e - at
    denom = ndtr(a) - ndtr(b)
    pa, pb = np.exp(_log_pdf(a)), np.exp(_log_pdf(b))
    safe = denom > 1e-300
    d = np.where(safe, denom, 1.0)
    v = np.where(safe, (pb - pa) / d, a)
    w = np.where(safe, v * v + (a * pa - b * pb) / d, 1.0)
    return v * sign, np.clip(w, 0.0, 1.0)


def _corrections(
    mu_a: np.ndarray,
    s2_a: np.ndarray,
    mu_b: np.ndarray,
    s2_b: np.ndarray,
    result: np.ndarray,
    beta: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v, w, c) of the update seen from the first item, for WIN (1.0) or DRAW (0.5)."""
    c = np.sqrt(2.0 * beta * beta + s2_a + s2_b)
    t = (mu_a - mu_b) / c
    e = eps / c
    v_win, w_win = v_w_win(t - e)
    v_drw, w_drw = v_w_draw(t, e)
    draw = np.asarray(result) == DRAW
    return np.where(draw, v_drw, v_win), np.where(draw, w_drw, w_win), c


def rate(
    mu_a: np.ndarray,
    sigma_a: np.ndarray,
    mu_b: np.ndarray,
    sigma_b: np.ndarray,
    result: np.ndarray | float = WIN,
    *,
    beta: float = 25.0 / 6.0,
    tau: float = 25.0 / 300.0,
    draw_probability: float = 0.10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised ``rate_1vs1``: ``a`` beat ``b`` (result 1.0) or drew (0.5).

    Returns ``(mu_a', sigma_a', mu_b', sigma_b')``, arrays broadcast from the inputs.
    """
    mu_a, mu_b = np.asarray(mu_a, dtype=np.float64), np.asarray(mu_b, dtype=np.float64)
    s2_a = np.asarray(sigma_a, dtype=np.float64) ** 2 + tau * tau
    s2_b = np.asarray(sigma_b, dtype=np.float64) ** 2 + tau * tau
    eps = draw_margin(draw_probability, beta)
    v, w, c = _corrections(mu_a, s2_a, mu_b, s2_b, result, beta, eps)
    c2 = c * c
    new_mu_a = mu_a + s2_a * v / c
    new_mu_b = mu_b - s2_b * v / c
    new_sd_a = np.sqrt(s2_a * (1.0 - s2_a * w / c2))
    new_sd_b = np.sqrt(s2_b * (1.0 - s2_b * w / c2))
    return new_mu_a, new_sd_a, new_mu_b, new_sd_b


def rate_pair(
    mu_a: float, sigma_a: float, mu_b: float, sigma_b: float, result: float = WIN, **env: float
) -> tuple[np.ndarray, np.ndarray]:
    """One update as ``(mu[2], sigma[2])``: a convenience for scalars and doctests."""
    ma, sa, mb, sb = rate(mu_a, sigma_a, mu_b, sigma_b, result, **env)
    return np.array([ma, mb], dtype=np.float64), np.array([sa, sb], dtype=np.float64)


def rate_sequence(
    mu: np.ndarray,
    sigma: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    result: np.ndarray,
    **env: float,
) -> None:
    """Apply votes in order, in place (a replay without the package's factor graph)."""
    beta = env.get("beta", 25.0 / 6.0)
    tau = env.get("tau", 25.0 / 300.0)
    eps = draw_margin(env.get("draw_probability", 0.10), beta)
    for a, b, r in zip(first.tolist(), second.tolist(), result.tolist(), strict=True):
        mu[a], sigma[a], mu[b], sigma[b] = rate_one(
            mu[a], sigma[a], mu[b], sigma[b], r, beta, tau, eps
        )


def outcome_probabilities(
    mu_a: np.ndarray,
    sigma_a: np.ndarray,
    mu_b: np.ndarray,
    sigma_b: np.ndarray,
    *,
    beta: float = 25.0 / 6.0,
    tau: float = 25.0 / 300.0,
    draw_probability: float = 0.10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictive ``(P(a wins), P(draw), P(b wins))`` under the current posteriors."""
    s2_a = np.asarray(sigma_a, dtype=np.float64) ** 2 + tau * tau
    s2_b = np.asarray(sigma_b, dtype=np.float64) ** 2 + tau * tau
    c = np.sqrt(2.0 * beta * beta + s2_a + s2_b)
    d = np.asarray(mu_a, dtype=np.float64) - np.asarray(mu_b, dtype=np.float64)
    eps = draw_margin(draw_probability, beta)
    p_a = ndtr((d - eps) / c)
    p_b = ndtr((-d - eps) / c)
    return p_a, np.clip(1.0 - p_a - p_b, 0.0, 1.0), p_b


def _kl_gain(s2: np.ndarray, c2: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """KL(posterior || prior) of one item: 0.5 [-log(1 - r w) - r w + r v^2], r = s2 / c^2."""
    rw = np.minimum(s2 / c2 * w, 1.0 - 1e-12)
    return 0.5 * (-np.log1p(-rw) - rw + s2 / c2 * v * v)


def expected_information_gain(
    mu_a: np.ndarray,
    sigma_a: np.ndarray,
    mu_b: np.ndarray,
    sigma_b: np.ndarray,
    *,
    beta: float = 25.0 / 6.0,
    tau: float = 25.0 / 300.0,
    draw_probability: float = 0.10,
) -> np.ndarray:
    """Expected KL from prior to posterior of both items, over the predicted outcomes (nats).

    A pair scores high when its outcome is uncertain *and* the two ratings are
    uncertain enough for the outcome to move them: what a vote "tells us".
    """
    mu_a, mu_b = np.asarray(mu_a, dtype=np.float64), np.asarray(mu_b, dtype=np.float64)
    s2_a = np.asarray(sigma_a, dtype=np.float64) ** 2 + tau * tau
    s2_b = np.asarray(sigma_b, dtype=np.float64) ** 2 + tau * tau
    c = np.sqrt(2.0 * beta * beta + s2_a + s2_b)
    c2 = c * c
    t = (mu_a - mu_b) / c
    e = draw_margin(draw_probability, beta) / c
    p_a, p_b = ndtr(t - e), ndtr(-t - e)
    p_d = np.clip(1.0 - p_a - p_b, 0.0, 1.0)
    gain = np.zeros(np.broadcast(mu_a, mu_b, c).shape)
    for p, (v, w) in ((p_a, v_w_win(t - e)), (p_b, v_w_win(-t - e))):
        gain = gain + p * (_kl_gain(s2_a, c2, v, w) + _kl_gain(s2_b, c2, v, w))
    if draw_probability > 0:
        v, w = v_w_draw(t, e)
        gain = gain + p_d * (_kl_gain(s2_a, c2, v, w) + _kl_gain(s2_b, c2, v, w))
    return gain


def rate_one(
    mu_a: float,
    sigma_a: float,
    mu_b: float,
    sigma_b: float,
    result: float,
    beta: float,
    tau: float,
    eps: float,
) -> tuple[float, float, float, float]:
    """Scalar :func:`rate` in plain ``math`` (~3 us): the hot path of a replay or simulator.

    ``eps`` is :func:`draw_margin`, computed once per environment by the caller.
    """
    s2_a = sigma_a * sigma_a + tau * tau
    s2_b = sigma_b * sigma_b + tau * tau
    c2 = 2.0 * beta * beta + s2_a + s2_b
    c = math.sqrt(c2)
    t, e = (mu_a - mu_b) / c, eps / c
    if result == DRAW:
        at = abs(t)
        a, b = e - at, -e - at
        denom = 0.5 * (math.erfc(-a / _SQRT2) - math.erfc(-b / _SQRT2))
        pa, pb = math.exp(-0.5 * a * a) / _SQRT_2PI, math.exp(-0.5 * b * b) / _SQRT_2PI
        if denom > 1e-300:
            v = (pb - pa) / denom
            w = v * v + (a * pa - b * pb) / denom
        else:
            v, w = a, 1.0
        if t < 0:
            v = -v
    else:
        x = t - e
        cdf = 0.5 * math.erfc(-x / _SQRT2)
        v = math.exp(-0.5 * x * x) / _SQRT_2PI / cdf if cdf > 1e-300 else -x
        w = v * (v + x)
    w = min(max(w, 0.0), 1.0)
    return (
        mu_a + s2_a * v / c,
        math.sqrt(s2_a * (1.0 - s2_a * w / c2)),
        mu_b - s2_b * v / c,
        math.sqrt(s2_b * (1.0 - s2_b * w / c2)),
    )


_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def prior_from_scores(
    scores: np.ndarray,
    agreement: float = 0.75,
    *,
    prior_mu: float = 0.0,
    prior_sigma: float = 8.33,
) -> tuple[np.ndarray, np.ndarray]:
    """Starting ratings ``(mu, sigma)`` for a project pre-ranked by a model's scores.

    agreement: how often the model orders a random pair like the humans do (0.5..1).
    If true qualities are ``N(prior_mu, prior_sigma^2)`` and the model's normalised
    score correlates ``rho`` with them, a random pair is ordered alike with probability
    ``1/2 + arcsin(rho) / pi``, so ``rho = sin(pi (agreement - 1/2))``; the posterior
    of an image given its score is then ``N(prior_mu + prior_sigma rho z,
    prior_sigma^2 (1 - rho^2))``. Scores enter only through their ranks (``z`` are
    normal scores), so any monotone score scale works.

    Example:
        >>> mu, sigma = prior_from_scores(np.array([0.1, 2.0, 1.0]), 0.75)
        >>> [round(float(x), 2) for x in mu], round(float(sigma[0]), 2)
        ([-7.21, 7.21, 0.0], 5.89)
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 0.5 <= agreement < 1.0:
        raise ValueError(f"agreement must be in [0.5, 1), got {agreement}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite; drop or re-score unreadable images first")
    n = len(scores)
    rho = math.sin(math.pi * (agreement - 0.5))
    ranks = rankdata(scores, method="average") - 1.0  # tied scores (bf16) get one z
    z = ndtri((ranks + 0.5) / max(n, 1))
    z = z / z.std() if n > 1 and z.std() > 0 else z * 0.0
    return prior_mu + prior_sigma * rho * z, np.full(n, prior_sigma * math.sqrt(1 - rho * rho))
