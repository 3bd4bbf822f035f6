"""Evaluation metrics of a pairwise quality model, each a small named function.

Pair metrics take ``diff = s_a - s_b`` (model score differences, so ``p = sigmoid(diff)``
is the predicted probability that A wins) and ``label`` (the observed probability that A
won: 1, 0 or 0.5 for a tie). Ties have no right answer, so accuracy, ECE and AURC are
computed over decisive pairs only; NLL and Brier use every pair with its soft label.
A decisive pair is right when the human's winner scores strictly higher and earns half
when the two scores are exactly equal (:func:`common.maths.pair_credit`), so a constant
model scores 0.5, never 1.0.

Example::

    evaluate_pairs(np.array([2.0, -1.0]), np.array([1.0, 1.0]))["accuracy"]  # 0.5
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from common.maths import bt_fit, kendall_tau, pair_credit, sigmoid

__all__ = [
    "accuracy", "aurc", "bradley_terry_fit", "brier", "decisive_count", "ece", "evaluate_pairs", "kendall",
    "nll", "sigmoid", "spearman",
]  # fmt: skip

ECE_BINS = 15


def _arrays(diff: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(diff, dtype=np.float64).reshape(-1)
    y = np.asarray(label, dtype=np.float64).reshape(-1)
    if d.shape != y.shape:
        raise ValueError(f"diff has {d.size} values but label has {y.size}")
    if d.size == 0:
        raise ValueError("no pairs to evaluate")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("labels must be probabilities in [0, 1]")
    return d, y


def _decisive(d: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ties and orient every pair so that A is the human's winner."""
    keep = y != 0.5
    sign = np.where(y[keep] > 0.5, 1.0, -1.0)
    return d[keep] * sign, np.ones(int(keep.sum()))


def accuracy(diff: np.ndarray, label: np.ndarray) -> float:
    """Mean credit over decisive pairs: 1 when the winner scores strictly higher, 0.5 on
    an exact tie of the scores, 0 otherwise."""
    d, _ = _decisive(*_arrays(diff, label))
    return float(np.mean(pair_credit(d))) if d.size else float("nan")


def decisive_count(label: np.ndarray) -> int:
    """How many pairs have a winner (the n behind accuracy's confidence interval)."""
    return int(np.sum(np.asarray(label, dtype=np.float64) != 0.5))


def nll(diff: np.ndarray, label: np.ndarray) -> float:
    """Mean Bradley-Terry negative log-likelihood (the training loss), soft labels."""
    d, y = _arrays(diff, label)
    return float(np.mean(y * np.logaddexp(0.0, -d) + (1 - y) * np.logaddexp(0.0, d)))


def brier(diff: np.ndarray, label: np.ndarray) -> float:
    """Mean squared error of the predicted probability: mean((p - y)^2)."""
    d, y = _arrays(diff, label)
    return float(np.mean((sigmoid(d) - y) ** 2))


def ece(diff: np.ndarray, label: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over decisive pairs.

    Confidence is ``max(p, 1 - p)``; correctness is :func:`common.maths.pair_credit`
    (an exact tie, p = 0.5, counts half). [0, 1] is cut into ``bins`` equal bins, closed on the right (the first also on
    the left); ECE = sum over bins of (share of pairs) * |mean confidence - accuracy|.
    """
    d, _ = _decisive(*_arrays(diff, label))
    if d.size == 0:
        return float("nan")
    p = sigmoid(d)
    conf = np.maximum(p, 1 - p)
    correct = pair_credit(d)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        member = index == b
        if member.any():
            total += member.mean() * abs(conf[member].mean() - correct[member].mean())
    return float(total)


def aurc(diff: np.ndarray, label: np.ndarray) -> float:
    """Area under the risk-coverage curve over decisive pairs (lower is better).

    Pairs are sorted by confidence ``|p - 0.5|``, most confident first (stable for equal
    confidence). At coverage k/n the risk is the mean error (1 - pair credit, so an
    exact tie is half an error) of the first k pairs; the curve over k = 1..n is integrated with ``np.trapezoid``.
    """
    d, _ = _decisive(*_arrays(diff, label))
    if d.size == 0:
        return float("nan")
    p = sigmoid(d)
    order = np.argsort(-np.abs(p - 0.5), kind="stable")
    errors = 1.0 - pair_credit(d[order])
    k = np.arange(1, d.size + 1)
    risk = np.cumsum(errors) / k
    return float(np.trapezoid(risk, k / d.size))


def spearman(model_scores: np.ndarray, human_scores: np.ndarray) -> float:
    """Spearman rank correlation of the model's order with the human one (ties averaged)."""
    a, b = _rank_inputs(model_scores, human_scores)
    return float(stats.spearmanr(a, b).statistic)


def kendall(model_scores: np.ndarray, human_scores: np.ndarray) -> float:
    """Kendall tau-b of the model's order with the human one."""
    a, b = _rank_inputs(model_scores, human_scores)
    return kendall_tau(a, b)


def _rank_inputs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} model scores but {b.size} human scores")
    if a.size < 2:
        raise ValueError("a rank correlation needs at least two images")
    return a, b


def evaluate_pairs(diff: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """All pair metrics at once, keyed by their logged names."""
    return {
        "accuracy": accuracy(diff, label),
        "nll": nll(diff, label),
        "brier": brier(diff, label),
        "ece": ece(diff, label),
        "aurc": aurc(diff, label),
    }


def bradley_terry_fit(
    index_a: np.ndarray, index_b: np.ndarray, label: np.ndarray, n: int, prior_sd: float = 2.0
) -> np.ndarray:
    """MAP Bradley-Terry strengths of ``n`` items from pairs (:func:`common.maths.bt_fit`).

    Used as the human ranking of test images when the data has no rating of its own
    (JoyQuality JSON). Example: one pair where item 0 beat item 1 gives ``s[0] > s[1]``.
    """
    scores, _variances = bt_fit(n, index_a, index_b, label, prior_sd=prior_sd)
    return scores
