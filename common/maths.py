"""Shared maths of pairwise preferences: one sigmoid, one correct-pair rule, one
Bradley-Terry fit, one rank correlation. numpy/scipy only, so the ranker, training and
the UI all import the same definitions.

- :func:`sigmoid` is ``scipy.special.expit`` in float64 (no overflow, no hand-written
  variants that round differently at the tails).
- :func:`pair_credit` is what "the model ordered this pair right" means everywhere:
  1 when the human's winner scores strictly higher, 0.5 on an exact tie (the model
  said nothing: a coin flip's expected credit), 0 otherwise. A constant model therefore
  scores 50%, not 100%.
- :func:`bt_fit` is the MAP Bradley-Terry fit over a vote graph: ``P(i beats j) =
  sigmoid(s_i - s_j)``, a tie counts as half a win each way, a Gaussian prior
  ``N(prior_mean, prior_sd^2)`` keeps it strictly convex (unseen items sit at the prior
  mean; a perfectly consistent labeler cannot push scores to infinity). A refit of all
  votes at once lets every vote inform every image through transitivity and does not
  depend on vote order.
- :func:`kendall_tau` is scipy's tau-b.

Example:
    >>> s, v = bt_fit(3, [0, 1], [1, 2], [1.0, 1.0])
    >>> bool(s[0] > s[1] > s[2])
    True
    >>> float(pair_accuracy([2.0, 0.0, -1.0]))
    0.5
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import LinearOperator, cg
from scipy.special import expit, log_expit

WILSON_Z95 = 1.959963984540054


def sigmoid(x) -> np.ndarray:
    """The logistic function in float64: ``1 / (1 + exp(-x))`` without overflow."""
    return expit(np.asarray(x, dtype=np.float64))


def log_sigmoid(x) -> np.ndarray:
    """``log(sigmoid(x))`` computed stably (the Bradley-Terry log-likelihood of a win)."""
    return log_expit(np.asarray(x, dtype=np.float64))


def pair_credit(winner_minus_loser) -> np.ndarray:
    """Credit per pair: 1 if the winner scores strictly higher, 0.5 on an exact tie, else 0.

    ``winner_minus_loser`` is the model's score of the human's winner minus that of the
    loser. NaN (a failed score) earns 0: an unscored pair is not a right answer.
    """
    d = np.asarray(winner_minus_loser, dtype=np.float64)
    return np.where(d > 0, 1.0, np.where(d == 0, 0.5, 0.0))


def pair_accuracy(winner_minus_loser) -> float:
    """Mean :func:`pair_credit` (NaN for no pairs)."""
    credit = pair_credit(winner_minus_loser).reshape(-1)
    return float(credit.mean()) if credit.size else float("nan")


def wilson_interval(successes: float, n: int, z: float = WILSON_Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); ``(nan, nan)`` for n = 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest for small n
    and for proportions near 0 or 1. ``successes`` may be fractional (half-credit ties).
    """
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def kendall_tau(a, b) -> float:
    """Kendall's tau-b of two score lists (scipy; ties handled; NaN when undefined)."""
    return float(stats.kendalltau(np.asarray(a, float), np.asarray(b, float)).statistic)


# Logistic(x) ~ Phi(x / 1.702): the probit performance noise ``beta`` that makes a
# Gaussian (TrueSkill-style) update on refit scores match the logistic model.
BT_PROBIT_BETA = 1.702 / np.sqrt(2.0)


def _loss(
    s: np.ndarray, f: np.ndarray, g: np.ndarray, r: np.ndarray, prec: np.ndarray, mean: np.ndarray
) -> float:
    d = s[f] - s[g]
    dev = s - mean
    return float(-(r * log_expit(d) + (1.0 - r) * log_expit(-d)).sum() + 0.5 * (prec * dev) @ dev)


def vote_arrays(first, second, result, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes as checked arrays: item positions (int64, in ``0..n-1``) and results
    (float64; 1.0 first won, 0.5 tie). Raises ``ValueError`` naming the fault."""
    f = np.asarray(first, dtype=np.int64)
    g = np.asarray(second, dtype=np.int64)
    r = np.asarray(result, dtype=np.float64)
    if not (len(f) == len(g) == len(r)):
        raise ValueError("first, second and result must have the same length")
    if len(f) and (min(f.min(), g.min()) < 0 or max(f.max(), g.max()) >= n):
        raise ValueError(f"vote item positions must be in 0..{n - 1}")
    return f, g, r


def bt_fit(
    n: int,
    first: np.ndarray | list[int],
    second: np.ndarray | list[int],
    result: np.ndarray | list[float],
    prior_sd: float | np.ndarray = 2.0,
    init: np.ndarray | None = None,
    *,
    prior_mean: float | np.ndarray = 0.0,
    max_iter: int = 30,
    tol: float = 1e-7,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP scores and per-item variances of a Bradley-Terry model with a Gaussian prior.

    first, second, result: vote ``k`` compares ``first[k]`` with ``second[k]``;
        ``result[k]`` is 1.0 when ``first[k]`` won, 0.5 for a tie (0.0 if second won).
    prior_sd, prior_mean: the Gaussian prior of the scores (logit units), a scalar or
        one value per item (a project pre-ranked by a model starts from its scores).
    init: warm start (e.g. the previous refit), which cuts Newton steps to one or two.

    Returns ``(scores, variances)``; the variances are ``1 / diag(Hessian)`` at the
    optimum: a per-item Laplace approximation that ignores correlations (cheap, and
    what a pair sampler needs). Newton steps solve the sparse Hessian system by
    preconditioned conjugate gradients, so cost is linear in votes + items.
    """
    sd = np.broadcast_to(np.asarray(prior_sd, dtype=np.float64), (n,))
    mean = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), (n,))
    if n and sd.min() <= 0:
        raise ValueError(f"prior_sd must be positive, got minimum {sd.min()}")
    f, g, r = vote_arrays(first, second, result, n)
    prec = 1.0 / (sd * sd)
    s = mean.copy() if init is None else np.array(init, dtype=np.float64, copy=True)
    if len(f) == 0:
        return mean.copy(), sd * sd
    rows = np.concatenate([f, g, f, g])
    cols = np.concatenate([f, g, g, f])
    loss = _loss(s, f, g, r, prec, mean)
    for _ in range(max_iter):
        p = expit(s[f] - s[g])
        resid = p - r
        grad = np.bincount(f, resid, n) - np.bincount(g, resid, n) + prec * (s - mean)
        h = p * (1.0 - p)
        diag = np.bincount(f, h, n) + np.bincount(g, h, n) + prec
        hess = coo_matrix((np.concatenate([h, h, -h, -h]), (rows, cols)), shape=(n, n)).tocsr()
        hess.setdiag(hess.diagonal() + prec)
        precond = LinearOperator((n, n), matvec=lambda x, d=diag: x / d)
        step, _info = cg(hess, -grad, rtol=1e-10, maxiter=200, M=precond)
        t = 1.0
        while True:  # backtracking keeps Newton monotone on near-separable data
            new = s + t * step
            new_loss = _loss(new, f, g, r, prec, mean)
            if new_loss <= loss + 1e-12 or t < 1e-4:
                break
            t *= 0.5
        s, improvement, loss = new, loss - new_loss, new_loss
        if np.abs(t * step).max() < tol or improvement < tol * 1e-3:
            break
    p = expit(s[f] - s[g])
    h = p * (1.0 - p)
    diag = np.bincount(f, h, n) + np.bincount(g, h, n) + prec
    return s, 1.0 / diag
