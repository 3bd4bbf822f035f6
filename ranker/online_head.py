"""An online preference head: Bradley-Terry on image embeddings plus per-image offsets.

Each image's score is ``s_i = phi_i . beta + u_i`` (logit units,
``P(i beats j) = sigmoid(s_i - s_j)``, a tie counts as half a win each way):

- ``phi_i`` (:class:`HeadFeatures`): the base model's score for image ``i``
  (standardised) followed by the image's coordinates on the embeddings' top principal
  axes. ``beta[0]`` scales the base head: its prior is centred on ``scale_mean`` and the
  votes can turn it down towards 0 (a base head that disagrees with the people);
  ``beta[1:]`` is a correction of the head inside the embedding space, prior
  ``N(0, correction_sd^2)``, so the head can turn towards the people's taste.
- ``u_i``: what the votes say about image ``i`` beyond the head, prior
  ``N(0, offset_sd^2)``. An image nobody compared has ``u_i = 0`` and is ranked by the
  head; an image with many votes is ranked by them.

:func:`fit_head` is the joint MAP (Newton steps, the sparse-plus-low-rank Hessian solved
by preconditioned conjugate gradients, cost linear in votes + images) with its Laplace
posterior: a full covariance of ``beta`` (the u-block of the Hessian approximated by its
diagonal in the Schur complement) and a variance per offset. :class:`OnlineHead` keeps a
fit fresh between refits with one Laplace (Newton) step per vote on ``beta`` and the two
offsets, so a pair selector sees every vote at once; a refit is warm-started and converges
to the same optimum as a cold batch fit of the same votes.

Example:
    >>> phi = np.array([[1.0], [0.0], [-1.0]], dtype=np.float32)  # base scores only
    >>> fit = fit_head(phi, [2], [0], [1.0])  # the people prefer the base's worst image
    >>> bool(fit.beta[0] < HeadPrior().scale_mean)  # the votes turned the base head down
    True
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import LinearOperator, cg
from scipy.special import expit, log_expit

from common.maths import vote_arrays

# sigmoid(x) ~ Phi(x * sqrt(pi / 8)): the probit scale of the logistic model, used to
# average a sigmoid over a Gaussian score difference (MacKay's approximation).
PROBIT = float(np.sqrt(np.pi / 8.0))


@dataclass(frozen=True)
class HeadPrior:
    """Prior of the head (logit units)."""

    scale_mean: float = 1.0  # weight of the standardised base score before any vote
    scale_sd: float = 1.5  # wide enough that votes can turn the base head down to 0
    correction_sd: float = 2.0  # head correction per unit of embedding variance
    offset_sd: float = 1.5  # an image's own deviation from the head


@dataclass(frozen=True)
class FeatureMap:
    """How :meth:`HeadFeatures.from_embeddings` made ``phi`` from an image's embedding
    ``x`` and base score ``s``: ``phi = [(s - s_mean) / s_sd, (x - x_mean) @ axes.T]``.

    Kept so a fitted head can leave the project as an ordinary linear model on the
    embedding (:meth:`linear`): the map is affine, so the head's score is exactly
    ``c * s + w . x + b``.
    """

    x_mean: np.ndarray  # (d,)
    axes: np.ndarray  # (r, d): principal axes divided by sqrt(total variance)
    s_mean: float
    s_sd: float  # 0.0 when there was no base score (its column is all zeros)

    def linear(self, beta: np.ndarray) -> tuple[float, np.ndarray, float]:
        """``(c, w, b)`` with ``phi(x, s) . beta == c * s + w . x + b`` (float64)."""
        beta = np.asarray(beta, dtype=np.float64)
        c = float(beta[0] / self.s_sd) if self.s_sd else 0.0
        w = self.axes.T @ beta[1:]
        return c, w, float(-c * self.s_mean - self.x_mean @ w)


@dataclass
class HeadFeatures:
    """``phi`` (n, p) float32: column 0 the standardised base score, then principal coords.

    ``map``: how ``phi`` was built from embeddings (None for hand-made features)."""

    phi: np.ndarray
    map: FeatureMap | None = None

    @classmethod
    def from_embeddings(
        cls,
        embeddings: np.ndarray,
        base_scores: np.ndarray | None,
        rank: int = 64,
        seed: int = 0,
    ) -> HeadFeatures:
        """Base scores plus the top ``rank`` principal coordinates of ``embeddings``.

        Coordinates are scaled so that the embeddings' total variance is 1: a correction
        with weights ``~ N(0, c^2)`` then moves scores by at most about ``c`` logits.
        A randomized range finder (two power iterations) keeps this at a second or so
        for 10,000 x 1,152 embeddings. ``base_scores`` None: no base head (column of 0).
        """
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"embeddings must be an (images, dims) array, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("embeddings must be finite")
        n, d = x.shape
        x_mean = x.mean(axis=0)
        x = x - x_mean
        total = float((x.astype(np.float64) ** 2).sum()) / n or 1.0
        r = min(rank, d, n - 1) if n > 1 else 0
        if r <= 0:
            coords, axes = np.zeros((n, 0), dtype=np.float32), np.zeros((0, d))
        elif r >= d:
            coords, axes = x, np.eye(d)
        else:
            rng = np.random.default_rng(seed)
            q = x @ rng.standard_normal((d, r + 10)).astype(np.float32)
            for _ in range(2):
                q, _ = np.linalg.qr(q)
                q, _ = np.linalg.qr(x @ (x.T @ q))
            _, _, vt = np.linalg.svd(q.T @ x, full_matrices=False)
            coords, axes = x @ vt[:r].T, vt[:r].astype(np.float64)
        coords = coords / np.float32(np.sqrt(total))
        s_mean, s_sd = _moments(base_scores, n)
        fmap = FeatureMap(x_mean.astype(np.float64), axes / np.sqrt(total), s_mean, s_sd)
        phi = np.column_stack([_standardise(base_scores, n), coords]).astype(np.float32)
        return cls(phi, fmap)

    @property
    def n(self) -> int:
        return self.phi.shape[0]

    @property
    def p(self) -> int:
        return self.phi.shape[1]


def _moments(scores: np.ndarray | None, n: int) -> tuple[float, float]:
    """Mean and the divisor :func:`_standardise` uses (0.0 when there are no scores)."""
    if scores is None:
        return 0.0, 0.0
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,) or not np.all(np.isfinite(s)):
        raise ValueError(f"base_scores must be {n} finite numbers, one per embedding")
    sd = float(s.std())
    return float(s.mean()), sd if sd > 0 else 1.0


def _standardise(scores: np.ndarray | None, n: int) -> np.ndarray:
    if scores is None:
        return np.zeros(n, dtype=np.float32)
    mean, sd = _moments(scores, n)
    return ((np.asarray(scores, dtype=np.float64) - mean) / sd).astype(np.float32)


@dataclass
class HeadFit:
    """MAP and Laplace posterior: ``beta`` (p), ``cov`` (p, p), ``u`` and ``var_u`` (n)."""

    beta: np.ndarray
    cov: np.ndarray
    u: np.ndarray
    var_u: np.ndarray
    newton_steps: int = 0


def _prior(prior: HeadPrior, p: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = np.zeros(p + n)
    prec = np.full(p + n, 1.0 / prior.offset_sd**2)
    if p:
        mean[0] = prior.scale_mean
        prec[0] = 1.0 / prior.scale_sd**2
        prec[1:p] = 1.0 / prior.correction_sd**2
    return mean, prec


def fit_head(
    phi: np.ndarray,
    first: np.ndarray | list[int],
    second: np.ndarray | list[int],
    result: np.ndarray | list[float],
    prior: HeadPrior | None = None,
    init: HeadFit | None = None,
    *,
    max_iter: int = 30,
    tol: float = 1e-9,
) -> HeadFit:
    """Joint MAP of ``beta`` and ``u`` with its Laplace posterior (see the module docstring).

    first, second, result: vote ``k`` compares ``first[k]`` with ``second[k]``;
        ``result[k]`` is 1.0 when ``first[k]`` won, 0.5 for a tie.
    init: a previous fit to warm-start from (one or two Newton steps after a few votes).
    """
    prior = prior or HeadPrior()
    n, p = phi.shape
    f, g, r = vote_arrays(first, second, result, n)
    mean, prec = _prior(prior, p, n)
    warm = init is not None and len(f) and len(init.beta) == p and len(init.u) == n
    theta = np.concatenate([init.beta, init.u]) if warm else mean.copy()
    dphi = phi[f].astype(np.float64) - phi[g].astype(np.float64)

    def diffs(t: np.ndarray) -> np.ndarray:
        return dphi @ t[:p] + t[p + f] - t[p + g]

    def loss(t: np.ndarray) -> float:
        d, dev = diffs(t), t - mean
        return float(-(r * log_expit(d) + (1 - r) * log_expit(-d)).sum() + 0.5 * (prec * dev) @ dev)

    def back(y: np.ndarray) -> np.ndarray:  # D^T y for the vote design D = [dphi, E]
        return np.concatenate([dphi.T @ y, np.bincount(f, y, n) - np.bincount(g, y, n)])

    current, steps = loss(theta), 0
    while len(f) and steps < max_iter:
        steps += 1
        prob = expit(diffs(theta))
        lam = prob * (1 - prob)
        grad = back(prob - r) + prec * (theta - mean)
        hbb = dphi.T @ (lam[:, None] * dphi) + np.diag(prec[:p])
        hbb_inv = np.linalg.inv(hbb) if p else hbb
        duu = np.bincount(f, lam, n) + np.bincount(g, lam, n) + prec[p:]
        hess = LinearOperator(
            (p + n,) * 2, matvec=lambda x, lam=lam: back(lam * diffs(x)) + prec * x
        )
        precond = LinearOperator(
            (p + n,) * 2,
            matvec=lambda x, hi=hbb_inv, du=duu: np.concatenate([hi @ x[:p], x[p:] / du]),
        )
        step, _ = cg(hess, -grad, rtol=1e-10, maxiter=500, M=precond)
        t = 1.0
        while True:  # backtracking keeps Newton monotone on near-separable votes
            new = theta + t * step
            new_loss = loss(new)
            if new_loss <= current + 1e-12 or t < 1e-4:
                break
            t *= 0.5
        theta, improvement, current = new, current - new_loss, new_loss
        if np.abs(t * step).max() < tol or improvement < tol * 1e-3:
            break
    return _laplace(theta, dphi, f, g, prec, p, n, steps)


def _laplace(theta, dphi, f, g, prec, p, n, steps) -> HeadFit:
    """Posterior covariance of beta (Schur complement, diagonal u-block) and var(u)."""
    beta, u = theta[:p], theta[p:]
    prob = expit(dphi @ beta + u[f] - u[g]) if len(f) else np.zeros(0)
    lam = prob * (1 - prob)
    duu = np.bincount(f, lam, n) + np.bincount(g, lam, n) + prec[p:]
    cov = np.zeros((p, p))
    if p:
        hbb = dphi.T @ (lam[:, None] * dphi)
        rows = np.concatenate([f, g])
        inc = csr_matrix(
            (np.concatenate([lam, -lam]), (rows, np.tile(np.arange(len(f)), 2))), (n, len(f))
        )
        hub = np.asarray(inc @ dphi)  # (n, p): d^2 loss / du d beta
        schur = hbb - hub.T @ (hub / duu[:, None])
        vals, vecs = np.linalg.eigh(0.5 * (schur + schur.T))
        # the exact Schur complement of the data part is PSD; the diagonal u-block can
        # push small eigenvalues below 0, so clip them (the prior then rules that axis)
        data = (vecs * np.maximum(vals, 0.0)) @ vecs.T
        cov = np.linalg.inv(data + np.diag(prec[:p]))
        cov = 0.5 * (cov + cov.T)
    return HeadFit(beta.copy(), cov, u.copy(), 1.0 / duu, steps)


def evidence_prior(
    fit: HeadFit, prior: HeadPrior, *, floor: float = 0.05, offsets: bool = False
) -> HeadPrior:
    """One MacKay (evidence) update of ``correction_sd`` (and ``offset_sd``) from a fit.

    Each scale becomes ``|MAP|^2 / gamma``, ``gamma`` the number of parameters the votes
    determine (``k - trace(posterior cov) / sd^2``). Where the embeddings carry no signal
    the correction shrinks towards 0 (the head falls back on the base model's scale,
    which the votes judge on their own); where offsets are not needed (the head already
    ranks like the people) they shrink too. Repeated at each refit, it converges to the
    type-II maximum likelihood of the two scales under the Laplace approximation.
    ``floor`` keeps both scales away from 0 so that they can grow back. ``offsets``
    False keeps ``offset_sd``: early on most images have no vote, their offsets sit at
    0 with the prior's variance, and the update would shrink the scale to the floor
    before the votes could show it (measured: the 85% world then lost its offsets).
    """

    def update(values: np.ndarray, variances: np.ndarray, sd: float) -> float:
        gamma = len(values) - float(variances.sum()) / sd**2
        if len(values) == 0 or gamma <= 1e-6:
            return floor
        return float(np.clip(np.sqrt(float(values @ values) / gamma), floor, 10.0))

    correction = prior.correction_sd
    if len(fit.beta) > 1:
        correction = update(fit.beta[1:], np.diag(fit.cov)[1:], prior.correction_sd)
    offset = update(fit.u, fit.var_u, prior.offset_sd) if offsets else prior.offset_sd
    return replace(prior, correction_sd=correction, offset_sd=offset)


def _quadratic(rows: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``rows[i] @ cov @ rows[i]`` for every row, through one matrix product (float32)."""
    return ((rows @ cov.astype(np.float32)) * rows).sum(axis=1)


class OnlineHead:
    """A :func:`fit_head` kept fresh vote by vote; :meth:`refit` makes it exact again.

    ``add`` applies one Laplace step (Newton from the current posterior) to ``beta`` and
    the two offsets, cross-covariances between them dropped: cheap (O(p^2 + n p)) and
    good enough to steer pair selection until the next refit. ``refit`` re-solves the MAP
    of every vote so far, warm-started; ``undo`` drops the last vote and refits, so the
    state equals a batch fit of the remaining votes.
    """

    def __init__(self, features: HeadFeatures, prior: HeadPrior | None = None) -> None:
        self.phi = features.phi
        self.prior = prior or HeadPrior()
        self.first: list[int] = []
        self.second: list[int] = []
        self.result: list[float] = []
        mean, prec = _prior(self.prior, features.p, features.n)
        self._set(
            HeadFit(
                mean[: features.p],
                np.diag(1 / prec[: features.p]),
                mean[features.p :],
                1 / prec[features.p :],
            )
        )

    def _set(self, fit: HeadFit) -> None:
        self.fit = fit
        self.scores = self.phi @ fit.beta.astype(np.float32) + fit.u.astype(np.float32)
        self.head_var = _quadratic(self.phi, fit.cov)

    @property
    def n_votes(self) -> int:
        return len(self.result)

    def item_var(self) -> np.ndarray:
        """Posterior variance of each image's score (head part + offset, correlations dropped)."""
        return self.head_var + self.fit.var_u.astype(np.float32)

    def pair_moments(
        self, a: np.ndarray, b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean of ``s_a - s_b``, its variance through the head, and through the offsets."""
        da = self.phi[a] - self.phi[b]
        head = _quadratic(da, self.fit.cov)
        return (
            self.scores[a] - self.scores[b],
            np.maximum(head, 0.0),
            self.fit.var_u[a] + self.fit.var_u[b],
        )

    def predict(self, a: int, b: int) -> float:
        """P(a beats b), the score difference's uncertainty averaged in."""
        m, vh, vu = self.pair_moments(np.array([a]), np.array([b]))
        return float(expit(m[0] / np.sqrt(1.0 + PROBIT**2 * (vh[0] + vu[0]))))

    def add(self, a: int, b: int, result: float) -> None:
        """Record a vote (``result`` 1.0: a won, 0.5: tie) and take one Laplace step."""
        self.first.append(a)
        self.second.append(b)
        self.result.append(result)
        fit = self.fit
        c = (self.phi[a] - self.phi[b]).astype(np.float64)
        sc = fit.cov @ c
        var = float(c @ sc) + fit.var_u[a] + fit.var_u[b]
        prob = float(expit(self.scores[a] - self.scores[b]))
        lam = prob * (1 - prob)
        gain = (result - prob) / (1 + lam * var)
        shrink = lam / (1 + lam * var)
        dbeta = sc * gain
        fit.beta = fit.beta + dbeta
        fit.cov = fit.cov - shrink * np.outer(sc, sc)
        self.head_var -= np.float32(shrink) * (self.phi @ sc.astype(np.float32)) ** 2
        self.scores += self.phi @ dbeta.astype(np.float32)
        for i, sign in ((a, 1.0), (b, -1.0)):
            v = fit.var_u[i]
            fit.u[i] += sign * v * gain
            self.scores[i] += np.float32(sign * v * gain)
            fit.var_u[i] = v - shrink * v * v

    def refit(self) -> None:
        """Re-solve the MAP of every vote so far (warm start)."""
        self._set(
            fit_head(self.phi, self.first, self.second, self.result, self.prior, init=self.fit)
        )

    def undo(self) -> None:
        """Drop the last vote; the state equals a batch fit of the remaining votes."""
        if not self.result:
            raise ValueError("no vote to undo")
        for votes in (self.first, self.second, self.result):
            votes.pop()
        self.refit()
