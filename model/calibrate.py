"""Turning scores into quality buckets: equal-width, sigmoid-calibrated and quantile.

JoyQuality scores are unscaled Bradley-Terry latents; text-to-image training wants a
handful of labels ("worst quality" ... "best quality"). Three ways to get them:

- Method A, :func:`equal_width_calibration`: split [min, max] of a dataset's scores
  into K equal-width buckets, so each quality level gets a share of the range.
- Method B, :func:`fit_calibration`: ``rank = K * sigmoid((s - b) / tau)`` with tau
  fitted by BCE on held-out preference pairs (so score gaps keep their meaning as win
  probabilities) and b found by bisection so the mean rank hits a target (K / 2).
  Upstream mixed K = 9 and K = 10 and let a sigmoid of exactly 1.0 fall into an extra
  bucket; here one K is used throughout and the bucket index is clamped to [0, K-1].
- :func:`quantile_calibration`: K buckets holding equal numbers of images.

A :class:`Calibration` holds the result and is saved beside the model
(calibration.json), so later runs bucket identically. The maths take and return
plain arrays; only :meth:`Calibration.save`/:meth:`Calibration.load` touch files.

Example::

    cal = fit_calibration(scores, s_winner, s_loser)      # method B, 5 labels
    cal.labels_for(scores)                                # ["high quality", ...]
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.maths import pair_accuracy, sigmoid

DEFAULT_LABELS = ("worst quality", "low quality", "average quality", "high quality", "best quality")
METHODS = ("sigmoid", "equal_width", "quantile")
LOG_TAU_BOUNDS = (math.log(1e-4), math.log(1e4))


def default_labels(k: int = len(DEFAULT_LABELS)) -> tuple[str, ...]:
    """The five named levels for K = 5, otherwise "quality 1/K" ... "quality K/K"."""
    if k < 1:
        raise ValueError(f"need at least one bucket, got K={k}")
    if k == len(DEFAULT_LABELS):
        return DEFAULT_LABELS
    return tuple(f"quality {i + 1}/{k}" for i in range(k))


def _as_array(x, name: str) -> np.ndarray:
    arr = np.asarray(
        x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64
    )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


@dataclass
class Calibration:
    """How scores become buckets; ``K == len(labels)``, bucket 0 is the worst.

    method "sigmoid" uses tau and b; "equal_width" and "quantile" use ``edges`` (the
    K - 1 inner bucket boundaries, ascending). ``info`` records how it was fitted.
    """

    method: str = "sigmoid"
    tau: float = 1.0
    b: float = 0.0
    K: int = len(DEFAULT_LABELS)
    labels: tuple[str, ...] = DEFAULT_LABELS
    edges: tuple[float, ...] = ()
    target_mean: float | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        self.edges = tuple(float(e) for e in self.edges)
        if self.method not in METHODS:
            raise ValueError(f"unknown bucketing method {self.method!r}; use one of {METHODS}")
        if len(self.labels) != self.K:
            raise ValueError(f"K={self.K} but {len(self.labels)} labels were given")
        if self.method == "sigmoid" and not (self.tau > 0 and math.isfinite(self.tau)):
            raise ValueError(f"tau must be positive and finite, got {self.tau}")
        if self.method != "sigmoid":
            if len(self.edges) != self.K - 1:
                raise ValueError(
                    f"{self.method} needs K-1={self.K - 1} edges, got {len(self.edges)}"
                )
            if any(b < a for a, b in zip(self.edges, self.edges[1:], strict=False)):
                raise ValueError("bucket edges must be ascending")

    def rank(self, scores) -> np.ndarray:
        """Continuous rank in [0, K] (method B's ``K * sigmoid((s - b) / tau)``)."""
        s = _as_array(scores, "scores")
        if self.method == "sigmoid":
            return sigmoid_rank(s, self.tau, self.b, self.K)
        return self.buckets(s).astype(np.float64)

    def buckets(self, scores) -> np.ndarray:
        """Bucket index per score (int64, 0 = worst, K-1 = best; -1 for NaN scores)."""
        s = _as_array(scores, "scores")
        if self.method == "sigmoid":
            out = sigmoid_buckets(s, self.tau, self.b, self.K)
        else:
            out = edge_buckets(s, np.asarray(self.edges))
        out[np.isnan(s)] = -1
        return out

    def labels_for(self, scores) -> list[str | None]:
        """Label per score (None where the score is NaN, i.e. the image failed)."""
        return [self.labels[i] if i >= 0 else None for i in self.buckets(scores)]

    def bucket_edges(self, lo: float | None = None, hi: float | None = None) -> list[float]:
        """Inner boundaries in score units (for plotting a histogram with edges)."""
        if self.method != "sigmoid":
            return list(self.edges)
        # Solve K * sigmoid((s - b) / tau) = k for k = 1..K-1.
        return [self.b + self.tau * math.log(k / (self.K - k)) for k in range(1, self.K)]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"], data["edges"] = list(self.labels), list(self.edges)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"cannot read calibration {path}: {exc}") from None


# --- pure maths ---------------------------------------------------------------------


def sigmoid_rank(scores: np.ndarray, tau: float, b: float, k: int) -> np.ndarray:
    """``K * sigmoid((s - b) / tau)``, computed stably (no overflow for large |s - b|)."""
    return k * sigmoid((np.asarray(scores, dtype=np.float64) - b) / tau)


def sigmoid_buckets(scores: np.ndarray, tau: float, b: float, k: int) -> np.ndarray:
    """``floor(rank)`` clamped to [0, K-1]: a sigmoid of exactly 1.0 stays in the top bucket."""
    rank = sigmoid_rank(scores, tau, b, k)
    return np.clip(np.floor(np.nan_to_num(rank, nan=0.0)), 0, k - 1).astype(np.int64)


def edge_buckets(scores: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Bucket by inner edges: a score equal to an edge goes to the upper bucket."""
    return np.searchsorted(inner_edges, np.asarray(scores, dtype=np.float64), side="right").astype(
        np.int64
    )


def _finite(scores: np.ndarray) -> np.ndarray:
    s = scores[np.isfinite(scores)]
    if s.size == 0:
        raise ValueError("no finite scores to calibrate on")
    return s


def equal_width_calibration(
    scores, labels: tuple[str, ...] | None = None, k: int | None = None
) -> Calibration:
    """Method A: K equal-width buckets over [min, max] of the (finite) scores."""
    labels = tuple(labels) if labels else default_labels(k or len(DEFAULT_LABELS))
    s = _finite(_as_array(scores, "scores"))
    lo, hi = float(s.min()), float(s.max())
    edges = np.linspace(lo, hi, len(labels) + 1)[1:-1]
    return Calibration(
        method="equal_width", K=len(labels), labels=labels, edges=tuple(edges),
        info={"min": lo, "max": hi, "n_scores": int(s.size)},
    )  # fmt: skip


def quantile_calibration(
    scores, labels: tuple[str, ...] | None = None, k: int | None = None
) -> Calibration:
    """K buckets with (about) equal counts: inner edges at the i/K quantiles."""
    labels = tuple(labels) if labels else default_labels(k or len(DEFAULT_LABELS))
    s = _finite(_as_array(scores, "scores"))
    kk = len(labels)
    edges = np.quantile(s, np.arange(1, kk) / kk) if kk > 1 else np.array([])
    return Calibration(
        method="quantile", K=kk, labels=labels, edges=tuple(edges), info={"n_scores": int(s.size)}
    )


def pair_nll(
    diff: torch.Tensor, y: torch.Tensor, w: torch.Tensor, log_tau: torch.Tensor
) -> torch.Tensor:
    """Weighted mean BCE of ``sigmoid(diff / tau)`` against labels y (1: first won, 0.5: tie)."""
    logits = diff / torch.exp(log_tau)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (loss * w).sum() / w.sum()


def fit_tau(
    s_winner, s_loser, weights=None, labels=None, tau0: float = 1.0, max_iter: int = 100
) -> float:
    """Temperature tau > 0 minimising the BCE of ``(s_w - s_l) / tau`` on preference pairs.

    labels: per pair, 1 when the first image won (default), 0 when it lost, 0.5 for a
    tie. Fitted as ``exp(log_tau)`` with LBFGS (strong Wolfe), in float64, and kept in
    [1e-4, 1e4] (a perfectly separable set would otherwise send tau to 0).
    """
    sw, sl = _as_array(s_winner, "s_winner"), _as_array(s_loser, "s_loser")
    if sw.shape != sl.shape or sw.size == 0:
        raise ValueError(f"need equally many winner and loser scores (got {sw.size} and {sl.size})")
    y = np.ones_like(sw) if labels is None else _as_array(labels, "labels")
    w = np.ones_like(sw) if weights is None else _as_array(weights, "weights")
    if y.shape != sw.shape or w.shape != sw.shape:
        raise ValueError("labels and weights need one value per pair")
    if np.any((y < 0) | (y > 1)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(
            "labels must lie in [0, 1] and weights be non-negative with a positive sum"
        )
    keep = np.isfinite(sw) & np.isfinite(sl)
    if not keep.any():
        raise ValueError("no pair has two finite scores")
    diff, yt, wt = (torch.from_numpy(a[keep]) for a in (sw - sl, y, w))
    log_tau = torch.tensor(math.log(tau0), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_tau], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = pair_nll(diff, yt, wt, log_tau)
        loss.backward()
        return loss

    opt.step(closure)
    value = float(np.clip(log_tau.detach().item(), *LOG_TAU_BOUNDS))
    return math.exp(value) if math.isfinite(value) else math.exp(LOG_TAU_BOUNDS[0])


def fit_bias(
    scores,
    tau: float,
    k: int = len(DEFAULT_LABELS),
    target_mean: float | None = None,
    tol: float = 1e-10,
) -> float:
    """Offset b so the mean of ``K * sigmoid((s - b) / tau)`` equals target_mean (K/2).

    The mean rank falls monotonically as b grows, so bisection always converges.
    """
    s = _finite(_as_array(scores, "scores"))
    target = k / 2 if target_mean is None else float(target_mean)
    if not 0 < target < k:
        raise ValueError(f"target mean rank must lie strictly between 0 and K={k}, got {target}")
    lo, hi = float(s.min()) - 60 * tau, float(s.max()) + 60 * tau
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if sigmoid_rank(s, tau, mid, k).mean() > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)


def fit_calibration(
    scores,
    s_winner,
    s_loser,
    *,
    labels: tuple[str, ...] | None = None,
    k: int | None = None,
    target_mean: float | None = None,
    weights=None,
    pair_labels=None,
) -> Calibration:
    """Method B: tau from validation pairs, then b so the dataset's mean rank is K/2."""
    labels = tuple(labels) if labels else default_labels(k or len(DEFAULT_LABELS))
    kk = len(labels)
    tau = fit_tau(s_winner, s_loser, weights=weights, labels=pair_labels)
    target = kk / 2 if target_mean is None else float(target_mean)
    b = fit_bias(scores, tau, kk, target)
    diff = _as_array(s_winner, "s_winner") - _as_array(s_loser, "s_loser")
    y = np.ones_like(diff) if pair_labels is None else _as_array(pair_labels, "pair_labels")
    oriented = np.where(y < 0.5, -diff, diff)  # winner minus loser
    acc = pair_accuracy(oriented[y != 0.5])
    return Calibration(
        method="sigmoid", tau=tau, b=b, K=kk, labels=labels, target_mean=target,
        info={"n_pairs": int(diff.size), "pair_accuracy": acc, "n_scores": int(np.size(scores))},
    )  # fmt: skip


def calibration_for(
    scores, method: str, labels: tuple[str, ...] | None = None, *, tau: float = 1.0, b: float = 0.0
) -> Calibration:
    """A calibration by name: "equal_width" and "quantile" are fitted on scores,
    "sigmoid" takes a known tau and b (fit them with :func:`fit_calibration`)."""
    if method == "equal_width":
        return equal_width_calibration(scores, labels=labels)
    if method == "quantile":
        return quantile_calibration(scores, labels=labels)
    if method == "sigmoid":
        names = tuple(labels) if labels else DEFAULT_LABELS
        return Calibration(tau=tau, b=b, K=len(names), labels=names)
    raise ValueError(f"bucketing method must be one of {METHODS}, not {method!r}")
