"""The online preference head: batch equality, undo, ties, the prior the votes turn down."""

from __future__ import annotations

import numpy as np
import pytest

from common.maths import bt_fit
from ranker.online_head import HeadFeatures, HeadPrior, OnlineHead, fit_head


def _world(n: int = 120, d: int = 12, votes: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    taste = rng.standard_normal(d)
    q = x @ taste / np.sqrt(d) * 3 + 0.5 * rng.standard_normal(n)
    features = HeadFeatures.from_embeddings(x, x[:, 0], rank=8)
    f = rng.integers(0, n, votes)
    g = (f + 1 + rng.integers(0, n - 1, votes)) % n
    win = rng.random(votes) < 1 / (1 + np.exp(-(q[f] - q[g])))
    result = np.where(rng.random(votes) < 0.1, 0.5, win.astype(float))  # some ties
    return features, f, g, result, q


def _assert_same(a, b, tol=1e-7):
    np.testing.assert_allclose(a.beta, b.beta, atol=tol)
    np.testing.assert_allclose(a.u, b.u, atol=tol)
    np.testing.assert_allclose(a.cov, b.cov, atol=tol)
    np.testing.assert_allclose(a.var_u, b.var_u, atol=tol)


def test_online_head_equals_a_batch_refit_of_the_same_votes():
    features, f, g, r, _ = _world()
    head = OnlineHead(features)
    for k, (a, b, res) in enumerate(zip(f, g, r, strict=True)):
        head.add(int(a), int(b), float(res))
        if k % 50 == 49:
            head.refit()  # warm-started from the online steps in between
    head.refit()
    batch = fit_head(features.phi, f, g, r)
    _assert_same(head.fit, batch)
    assert batch.newton_steps > head.fit.newton_steps  # the warm start saved steps


def test_undo_equals_a_refit_without_the_vote():
    features, f, g, r, _ = _world(votes=80)
    head = OnlineHead(features)
    for a, b, res in zip(f, g, r, strict=True):
        head.add(int(a), int(b), float(res))
    head.refit()
    head.undo()
    _assert_same(head.fit, fit_head(features.phi, f[:-1], g[:-1], r[:-1]))
    for _ in range(79):
        head.undo()
    prior = fit_head(features.phi, [], [], [])
    _assert_same(head.fit, prior)
    assert prior.beta[0] == HeadPrior().scale_mean
    with pytest.raises(ValueError, match="no vote to undo"):
        head.undo()


def test_without_features_it_is_the_bradley_terry_refit():
    _, f, g, r, _ = _world()
    empty = np.zeros((120, 0), dtype=np.float32)
    fit = fit_head(empty, f, g, r, HeadPrior(offset_sd=2.0))
    scores, var = bt_fit(120, f, g, r, prior_sd=2.0)
    np.testing.assert_allclose(fit.u, scores, atol=1e-7)
    np.testing.assert_allclose(fit.var_u, var, atol=1e-9)


def test_votes_turn_a_wrong_base_head_down_and_learn_the_taste():
    rng = np.random.default_rng(3)
    n = 300
    x = rng.standard_normal((n, 6)).astype(np.float32)
    q = 2.0 * x[:, 1]
    features = HeadFeatures.from_embeddings(x, -x[:, 1], rank=6)  # base head is backwards
    f = rng.integers(0, n, 400)
    g = (f + 1 + rng.integers(0, n - 1, 400)) % n
    r = (rng.random(400) < 1 / (1 + np.exp(-(q[f] - q[g])))).astype(float)
    fit = fit_head(features.phi, f, g, r)
    scores = features.phi @ fit.beta + fit.u
    unvoted = np.setdiff1d(np.arange(n), np.concatenate([f, g]))
    assert fit.beta[0] < 0  # the base head's weight went through zero
    assert np.corrcoef(scores, q)[0, 1] > 0.95
    if len(unvoted) > 2:  # images nobody compared are ranked by the learned head
        assert np.corrcoef(scores[unvoted], q[unvoted])[0, 1] > 0.95
    # the Laplace posterior is proper and tighter than the prior on every axis
    assert np.all(np.linalg.eigvalsh(fit.cov) > 0)
    prior_var = np.array([1.5**2] + [2.0**2] * (features.p - 1))
    assert np.all(np.diag(fit.cov) < prior_var)


def test_pair_predictions_follow_the_fit():
    features, f, g, r, q = _world()
    head = OnlineHead(features)
    for a, b, res in zip(f, g, r, strict=True):
        head.add(int(a), int(b), float(res))
    head.refit()
    best, worst = int(np.argmax(head.scores)), int(np.argmin(head.scores))
    assert head.predict(best, worst) > 0.9
    assert head.predict(best, worst) + head.predict(worst, best) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("embeddings", "base", "message"),
    [
        (np.zeros(5), None, "embeddings must be an"),
        (np.full((4, 3), np.nan), None, "must be finite"),
        (np.ones((4, 3)), np.ones(3), "base_scores must be 4"),
    ],
)
def test_bad_features_are_named(embeddings, base, message):
    with pytest.raises(ValueError, match=message):
        HeadFeatures.from_embeddings(embeddings, base)


def test_bad_votes_are_named():
    phi = np.zeros((3, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="same length"):
        fit_head(phi, [0], [1, 2], [1.0])
    with pytest.raises(ValueError, match="0..2"):
        fit_head(phi, [0], [3], [1.0])


@pytest.mark.parametrize(("n", "d", "base"), [(40, 100, True), (40, 6, True), (5, 6, False)])
def test_feature_map_turns_any_head_into_a_linear_model_on_the_embedding(n, d, base):
    """phi . beta == c * base_score + w . x + b for every image, whichever branch built
    phi (randomized axes, all dims, fewer images than dims; with and without base)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, d)).astype(np.float32) * 3 + 1
    s = x @ rng.standard_normal(d) + 0.7 if base else None
    features = HeadFeatures.from_embeddings(x, s, rank=16)
    beta = rng.standard_normal(features.p)
    c, w, b = features.map.linear(beta)
    direct = c * (s if base else 0.0) + x.astype(np.float64) @ w + b
    np.testing.assert_allclose(features.phi.astype(np.float64) @ beta, direct, atol=1e-4)
    assert (c != 0.0) == base
