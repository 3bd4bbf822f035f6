"""Bradley-Terry MAP refit: optimality, order, priors, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from common.maths import bt_fit


def _grad(s, f, g, r, sd, mean=0.0):
    p = expit(s[f] - s[g])
    n = len(s)
    return np.bincount(f, p - r, n) - np.bincount(g, p - r, n) + (s - mean) / sd**2


def test_fit_is_a_stationary_point_and_recovers_order() -> None:
    rng = np.random.default_rng(3)
    n, v = 60, 2000
    q = np.linspace(-3, 3, n)
    f = rng.integers(0, n, v)
    g = (f + rng.integers(1, n, v)) % n
    r = (rng.random(v) < expit(q[f] - q[g])).astype(float)
    s, var = bt_fit(n, f, g, r, prior_sd=2.0)
    assert np.abs(_grad(s, f, g, r, 2.0)).max() < 1e-6
    assert np.corrcoef(s, q)[0, 1] > 0.97
    assert np.all(var > 0) and np.all(var < 4.0)


def test_golden_two_items_one_vote() -> None:
    # s0 = -s1 = x with x / 4 = 1 - sigmoid(2x): the MAP of one win under N(0, 2^2)
    s, var = bt_fit(2, [0], [1], [1.0], prior_sd=2.0)
    x = s[0]
    assert s[1] == pytest.approx(-x)
    assert x / 4 == pytest.approx(1 - expit(2 * x), abs=1e-9)
    assert x == pytest.approx(0.74077, abs=1e-4)


def test_ties_pull_together_and_no_votes_give_the_prior() -> None:
    s, _ = bt_fit(2, [0, 0], [1, 1], [1.0, 0.5])
    s_win, _ = bt_fit(2, [0, 0], [1, 1], [1.0, 1.0])
    assert 0 < s[0] < s_win[0]
    s, var = bt_fit(3, [], [], [], prior_sd=1.5, prior_mean=np.array([1.0, 0.0, -1.0]))
    assert s == pytest.approx([1.0, 0.0, -1.0]) and var == pytest.approx([2.25] * 3)


def test_per_item_prior_and_warm_start_agree() -> None:
    f, g, r = np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([1.0, 1.0, 1.0])
    mean = np.array([0.5, 0.0, -0.5])
    cold, _ = bt_fit(3, f, g, r, prior_sd=np.array([1.0, 2.0, 3.0]), prior_mean=mean)
    warm, _ = bt_fit(3, f, g, r, prior_sd=np.array([1.0, 2.0, 3.0]), prior_mean=mean, init=cold + 1)
    np.testing.assert_allclose(cold, warm, atol=1e-7)
    assert np.abs(_grad(cold, f, g, r, np.array([1.0, 2.0, 3.0]), mean)).max() < 1e-7


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((2, [0], [1], [1.0, 1.0]), "same length"),
        ((2, [0], [2], [1.0]), "positions"),
        ((2, [0], [1], [1.0], 0.0), "prior_sd"),
    ],
)
def test_bad_input(args, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bt_fit(*args)
