"""Golden values for the three bucketing methods and the tau / b fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.calibrate import (
    DEFAULT_LABELS,
    Calibration,
    default_labels,
    equal_width_calibration,
    fit_bias,
    fit_calibration,
    fit_tau,
    quantile_calibration,
    sigmoid_buckets,
    sigmoid_rank,
)


def test_default_labels_worst_to_best():
    assert DEFAULT_LABELS[0] == "worst quality" and DEFAULT_LABELS[-1] == "best quality"
    assert default_labels(5) == DEFAULT_LABELS
    assert default_labels(3) == ("quality 1/3", "quality 2/3", "quality 3/3")


def test_method_a_golden():
    cal = equal_width_calibration([0.0, 1.0, 2.5, 9.99, 10.0], k=5)
    assert cal.edges == (2.0, 4.0, 6.0, 8.0)
    assert cal.buckets([0.0, 1.99, 2.0, 5.0, 7.9, 10.0, 1e9, -1e9]).tolist() == [
        0,
        0,
        1,
        2,
        3,
        4,
        4,
        0,
    ]
    assert cal.labels_for([10.0, float("nan")]) == ["best quality", None]


def test_method_b_golden_values_and_clamp():
    # K * sigmoid((s - b) / tau) with tau=1, b=0, K=5: s=0 -> 2.5, s=ln(4) -> 4.0 exactly.
    s = np.array([0.0, math.log(4.0), -math.log(4.0), 50.0, 1e6, -1e6])
    np.testing.assert_allclose(sigmoid_rank(s, 1.0, 0.0, 5)[:3], [2.5, 4.0, 1.0])
    # A sigmoid of exactly 1.0 (s = 50, 1e6) would be rank 5: clamped into the top bucket 4.
    assert sigmoid_rank(s, 1.0, 0.0, 5)[3] == 5.0
    assert sigmoid_buckets(s + 1e-9, 1.0, 0.0, 5).tolist() == [2, 4, 1, 4, 4, 0]
    cal = Calibration(tau=2.0, b=1.0, K=5)
    assert cal.buckets([1.0, 1.0 + 2 * math.log(4.0) + 1e-9, float("nan")]).tolist() == [2, 4, -1]
    np.testing.assert_allclose(
        cal.bucket_edges(), [1 + 2 * math.log(k / (5 - k)) for k in range(1, 5)]
    )


def test_method_b_never_makes_an_extra_bucket():
    rng = np.random.default_rng(0)
    s = np.concatenate([rng.normal(0, 30, 10_000), [1e300, -1e300]])
    for k in (2, 5, 10):
        buckets = sigmoid_buckets(s, 0.1, 0.0, k)
        assert buckets.min() == 0 and buckets.max() == k - 1


def test_quantile_buckets_equal_counts():
    scores = np.arange(100, dtype=float)
    cal = quantile_calibration(scores, labels=("bad", "ok", "good", "great"))
    assert np.bincount(cal.buckets(scores)).tolist() == [25, 25, 25, 25]
    assert cal.labels_for([0.0, 99.0]) == ["bad", "great"]


def _pairs(tau_true: float, n_pairs: int, seed: int):
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 2.0, 5000)
    i, j = rng.integers(0, s.size, (2, n_pairs))
    first_wins = rng.random(n_pairs) < 1.0 / (1.0 + np.exp(-(s[i] - s[j]) / tau_true))
    return s, np.where(first_wins, s[i], s[j]), np.where(first_wins, s[j], s[i])


@pytest.mark.parametrize("tau_true", [0.5, 1.0, 3.0])
def test_fit_tau_recovers_known_tau(tau_true):
    _, w, lo = _pairs(tau_true, 40_000, seed=int(tau_true * 10))
    assert fit_tau(w, lo) == pytest.approx(tau_true, rel=0.06)


def test_fit_tau_labels_and_ties():
    _, w, lo = _pairs(1.0, 20_000, seed=1)
    # Swapping the order and saying "first lost" is the same data.
    assert fit_tau(lo, w, labels=np.zeros_like(w)) == pytest.approx(fit_tau(w, lo), rel=1e-6)
    # Ties (0.5) between distant scores can only be explained by a large tau.
    assert fit_tau([3.0, -3.0], [-3.0, 3.0], labels=[0.5, 0.5]) > 100


def test_fit_tau_bad_input():
    with pytest.raises(ValueError, match="equally many"):
        fit_tau([1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="labels must lie in"):
        fit_tau([1.0], [0.0], labels=[2.0])
    assert fit_tau([1.0, 2.0], [0.0, 0.0]) < 0.1  # separable: tau heads for 0


def test_fit_bias_hits_target_mean():
    scores = np.random.default_rng(3).normal(1.5, 2.0, 3000)
    for target in (2.5, 1.0, 4.2):
        b = fit_bias(scores, 0.8, 5, target)
        assert sigmoid_rank(scores, 0.8, b, 5).mean() == pytest.approx(target, abs=1e-8)
    # Symmetric scores around 0: b = 0 for the default target K/2.
    assert fit_bias(np.array([-2.0, -1.0, 1.0, 2.0]), 1.0, 10) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="strictly between 0 and K"):
        fit_bias(scores, 1.0, 5, 5.0)


def test_fit_calibration_and_json_roundtrip(tmp_path):
    s, w, lo = _pairs(0.7, 30_000, seed=5)
    cal = fit_calibration(s, w, lo, labels=("c", "b", "a"))
    assert cal.method == "sigmoid" and cal.K == 3 and cal.tau == pytest.approx(0.7, rel=0.06)
    assert cal.rank(s).mean() == pytest.approx(1.5, abs=1e-6)
    assert 0.7 < cal.info["pair_accuracy"] < 1.0 and cal.info["n_pairs"] == 30_000
    loaded = Calibration.load(cal.save(tmp_path / "calibration.json"))
    assert loaded == cal
    np.testing.assert_array_equal(loaded.buckets(s), cal.buckets(s))


def test_calibration_validation():
    with pytest.raises(ValueError, match="K=4 but 5 labels"):
        Calibration(K=4)
    with pytest.raises(ValueError, match="tau must be positive"):
        Calibration(tau=0.0)
    with pytest.raises(ValueError, match="needs K-1=4 edges"):
        Calibration(method="quantile", edges=(1.0,))
    with pytest.raises(ValueError, match="unknown bucketing method"):
        Calibration(method="magic")
    with pytest.raises(ValueError, match="no finite scores"):
        equal_width_calibration([float("nan")])


def test_calibration_for_by_name():
    from model.calibrate import calibration_for

    scores = [0.0, 1.0, 2.0, 3.0]
    assert calibration_for(scores, "equal_width", ("a", "b")).labels_for(scores) == [
        "a",
        "a",
        "b",
        "b",
    ]
    assert calibration_for(scores, "quantile", ("a", "b")).edges == (1.5,)
    sig = calibration_for(scores, "sigmoid", tau=2.0, b=1.0)
    assert (sig.tau, sig.b, sig.labels) == (2.0, 1.0, DEFAULT_LABELS)
    with pytest.raises(ValueError, match="bucketing method must be one of"):
        calibration_for(scores, "magic")
