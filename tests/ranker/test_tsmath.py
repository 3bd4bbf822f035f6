"""The closed-form TrueSkill must equal the ``trueskill`` package it stands in for."""

from __future__ import annotations

import numpy as np
import pytest
import trueskill

from ranker import tsmath

PRESETS = {
    "image_ranker": dict(mu=0.0, sigma=8.33, beta=25 / 6, tau=25 / 300, draw_probability=0.10),
    "trueskill": dict(mu=25.0, sigma=25 / 3, beta=25 / 6, tau=25 / 300, draw_probability=0.10),
}


def _env(p: dict) -> dict:
    return {k: p[k] for k in ("beta", "tau", "draw_probability")}


def test_image_ranker_first_vote_golden() -> None:
    mu, sigma = tsmath.rate_pair(0.0, 8.33, 0.0, 8.33, tsmath.WIN)
    assert mu == pytest.approx([4.394, -4.394], abs=1e-3)
    assert sigma == pytest.approx([7.169, 7.169], abs=1e-3)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_rate_matches_package_on_random_inputs(preset: str) -> None:
    p = PRESETS[preset]
    env = trueskill.TrueSkill(**p)
    rng = np.random.default_rng(7)
    k = 400
    mu_a, mu_b = rng.normal(p["mu"], 6, k), rng.normal(p["mu"], 6, k)
    sd_a, sd_b = rng.uniform(0.5, 9, k), rng.uniform(0.5, 9, k)
    result = np.where(rng.random(k) < 0.3, tsmath.DRAW, tsmath.WIN)
    got = np.stack(tsmath.rate(mu_a, sd_a, mu_b, sd_b, result, **_env(p)), axis=1)
    want = []
    for i in range(k):
        w, lo = env.rate_1vs1(
            env.create_rating(mu_a[i], sd_a[i]),
            env.create_rating(mu_b[i], sd_b[i]),
            drawn=bool(result[i] == tsmath.DRAW),
        )
        want.append((w.mu, w.sigma, lo.mu, lo.sigma))
    # the package's own erfc approximation is good to ~1e-7 relative: 1e-5 covers it
    np.testing.assert_allclose(got, np.array(want), atol=1e-5)


@pytest.mark.parametrize("result", [tsmath.WIN, tsmath.DRAW])
def test_scalar_rate_one_equals_vectorised(result: float) -> None:
    env = _env(PRESETS["image_ranker"])
    eps = tsmath.draw_margin(env["draw_probability"], env["beta"])
    one = tsmath.rate_one(1.0, 3.0, -2.0, 5.0, result, env["beta"], env["tau"], eps)
    vec = tsmath.rate(1.0, 3.0, -2.0, 5.0, result, **env)
    np.testing.assert_allclose(one, [float(x) for x in vec], rtol=1e-12)


def test_big_upset_stays_finite() -> None:
    mu = tsmath.rate(-200.0, 1.0, 200.0, 1.0, tsmath.WIN)
    assert all(np.isfinite(x) for x in mu)
    assert mu[0] > -200.0 and mu[2] < 200.0


def test_outcome_probabilities_sum_to_one_and_favour_the_stronger() -> None:
    pa, pd, pb = tsmath.outcome_probabilities(np.array([5.0, 0.0]), 2.0, 0.0, 2.0)
    np.testing.assert_allclose(pa + pd + pb, 1.0)
    assert pa[0] > pb[0] and pa[1] == pytest.approx(pb[1])


def test_information_gain_prefers_uncertain_close_pairs() -> None:
    close_uncertain = tsmath.expected_information_gain(0.0, 8.0, 0.5, 8.0)
    close_certain = tsmath.expected_information_gain(0.0, 1.0, 0.5, 1.0)
    far_uncertain = tsmath.expected_information_gain(0.0, 8.0, 40.0, 8.0)
    assert close_uncertain > close_certain > 0
    assert close_uncertain > far_uncertain > 0


def test_prior_from_scores_orders_and_shrinks() -> None:
    mu, sigma = tsmath.prior_from_scores(np.array([0.3, -1.0, 2.0, 0.3]), 0.75)
    assert mu[2] > mu[0] == mu[3] > mu[1]  # tied scores share one prior
    assert sigma == pytest.approx(np.full(4, 8.33 * np.sqrt(0.5)))
    flat_mu, flat_sigma = tsmath.prior_from_scores(np.arange(5.0), 0.5)
    assert flat_mu == pytest.approx(np.zeros(5)) and flat_sigma == pytest.approx(np.full(5, 8.33))


@pytest.mark.parametrize("bad", [0.3, 1.0])
def test_prior_from_scores_rejects_impossible_agreement(bad: float) -> None:
    with pytest.raises(ValueError, match="agreement"):
        tsmath.prior_from_scores(np.arange(3.0), bad)
