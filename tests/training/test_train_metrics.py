"""Golden values for the BT loss, every metric, the schedules and the BT ranking fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training import metrics
from training.losses import bt_loss
from training.schedule import lr_factor

# Four pairs: a confident right call, a wrong call, a wrong call on a pair that B won,
# and a tie.  Oriented to the human winner the decisive diffs are [2, -1, -0.5].
DIFF = np.array([2.0, -1.0, 0.5, 0.0])
LABEL = np.array([1.0, 1.0, 0.0, 0.5])
P = [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1)), 1 / (1 + math.exp(0.5))]  # winner's p


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


def test_bt_loss_golden():
    a = torch.tensor([1.0, 0.0, 2.0, 3.0])
    b = torch.tensor([0.0, 0.0, 3.0, 1.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.5])
    expected = (sp(-1) + math.log(2) + sp(-1) + 0.5 * sp(-2) + 0.5 * sp(2)) / 4
    assert bt_loss(a, b, y).item() == pytest.approx(expected, rel=1e-6)
    assert bt_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0])).item() == (
        pytest.approx(0.31326169, rel=1e-6)
    )


def test_bt_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        bt_loss(torch.zeros(2), torch.zeros(3), torch.ones(2))


def test_accuracy_ignores_ties():
    assert metrics.accuracy(DIFF, LABEL) == pytest.approx(1 / 3)


def test_nll_uses_soft_labels():
    expected = (sp(-2) + sp(1) + sp(0.5) + math.log(2)) / 4
    assert metrics.nll(DIFF, LABEL) == pytest.approx(expected)
    assert metrics.nll(DIFF, LABEL) == pytest.approx(0.7768535, abs=1e-6)


def test_brier():
    p = 1 / (1 + np.exp(-DIFF))
    expected = ((p[0] - 1) ** 2 + (p[1] - 1) ** 2 + p[2] ** 2 + 0.0) / 4
    assert metrics.brier(DIFF, LABEL) == pytest.approx(expected)
    assert metrics.brier(DIFF, LABEL) == pytest.approx(0.2340280, abs=1e-6)


def test_ece_fifteen_bins():
    # Confidences 0.881, 0.731, 0.622 fall in bins 13, 10 and 9: each its own bin.
    conf = [P[0], 1 - P[1], 1 - P[2]]
    correct = [1, 0, 0]
    expected = sum(abs(c - k) for c, k in zip(conf, correct, strict=True)) / 3
    assert metrics.ece(DIFF, LABEL) == pytest.approx(expected)
    assert metrics.ece(DIFF, LABEL) == pytest.approx(0.4909070, abs=1e-6)


def test_ece_shared_bin_averages_first():
    # Two pairs in one bin (conf 0.731 and 0.731, one right, one wrong): |0.731 - 0.5|.
    diff, label = np.array([1.0, -1.0]), np.array([1.0, 1.0])
    assert metrics.ece(diff, label) == pytest.approx(abs(1 / (1 + math.exp(-1)) - 0.5))


def test_aurc_trapezoid():
    # Most confident first: errors [0, 1, 1] -> risks [0, 1/2, 2/3] at coverage 1/3, 2/3, 1.
    expected = np.trapezoid([0, 0.5, 2 / 3], [1 / 3, 2 / 3, 1])
    assert metrics.aurc(DIFF, LABEL) == pytest.approx(expected)
    assert metrics.aurc(DIFF, LABEL) == pytest.approx(0.2777778, abs=1e-6)
    assert metrics.aurc(np.array([3.0, 1.0]), np.array([1.0, 1.0])) == 0.0


def test_rank_correlations():
    model, human = np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])
    assert metrics.spearman(model, human) == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert metrics.kendall(model, human) == pytest.approx((5 - 1) / 6)
    with pytest.raises(ValueError, match="at least two"):
        metrics.spearman(np.array([1.0]), np.array([1.0]))


def test_evaluate_pairs_keys_and_input_checks():
    out = metrics.evaluate_pairs(DIFF, LABEL)
    assert set(out) == {"accuracy", "nll", "brier", "ece", "aurc"}
    with pytest.raises(ValueError, match="no pairs"):
        metrics.accuracy(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="probabilities"):
        metrics.nll(np.array([1.0]), np.array([2.0]))


def test_bradley_terry_fit_orders_a_chain():
    # 0 beats 1 twice, 1 beats 2 twice: strengths strictly decrease and sum to ~0.
    s = metrics.bradley_terry_fit(np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2]), np.ones(4), n=3)
    assert s[0] > s[1] > s[2]
    assert s.sum() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(
    ("kind", "step", "expected"),
    [
        ("cosine", 0, 0.1),
        ("cosine", 9, 1.0),
        ("cosine", 55, 0.5),
        ("linear", 55, 0.5),
        ("constant", 99, 1.0),
        ("onecycle", 0, 1 / 25),
        ("onecycle", 10, 1.0),
        ("onecycle", 99, 1 / 25 / 1e4),
        ("onecycle", 5, (1 / 25 + 1) / 2),
    ],
)
def test_lr_factor_golden(kind, step, expected):
    assert lr_factor(kind, step, 100, 10) == pytest.approx(expected)


def test_onecycle_without_warmup_starts_at_peak():
    assert lr_factor("onecycle", 0, 50, 0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown lr_scheduler"):
        lr_factor("step", 0, 10, 0)
