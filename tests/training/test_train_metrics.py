"""Golden values for the BT loss, every metric, the schedules and the BT ranking fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.maths import bt_fit as ranker_bt_fit
from common.maths import pair_accuracy, pair_credit, wilson_interval
from common.maths import sigmoid as expit_sigmoid
from model.calibrate import fit_calibration
from training import metrics
from training.loop import pair_credit_mean
from training.losses import bt_loss
from training.robustness import robustness_accuracy
from training.schedule import lr_curve, make_scheduler

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


def cosine_curve(total: int, warmup: int) -> list[float]:
    """transformers' cosine-with-warmup, written out: step/warmup, then half a cosine."""
    out = []
    for k in range(total):
        if k < warmup:
            out.append(k / warmup)
        else:
            out.append(0.5 * (1 + math.cos(math.pi * (k - warmup) / (total - warmup))))
    return out


def onecycle_curve(total: int, warmup: int) -> list[float]:
    """torch's OneCycleLR (cos annealing, div 25, final div 1e4) written out."""
    start, end = 1 / 25, 1 / 25 / 1e4
    up_end, down_end = warmup - 1, total - 1
    out = []
    for k in range(total):
        if k <= up_end:
            a, b, f = start, 1.0, k / up_end
        else:
            a, b, f = 1.0, end, (k - up_end) / (down_end - up_end)
        out.append(b + (a - b) / 2 * (1 + math.cos(math.pi * f)))
    return out


def test_schedules_are_the_libraries_curves():
    assert lr_curve("cosine", 100, 10) == pytest.approx(cosine_curve(100, 10))
    assert lr_curve("onecycle", 100, 10) == pytest.approx(onecycle_curve(100, 10))
    linear = [k / 10 if k < 10 else (100 - k) / 90 for k in range(100)]
    assert lr_curve("linear", 100, 10) == pytest.approx(linear)
    assert lr_curve("constant", 20, 4) == pytest.approx([0, 0.25, 0.5, 0.75] + [1.0] * 16)


@pytest.mark.parametrize(
    ("kind", "step", "expected"),
    [
        ("cosine", 0, 0.0),  # transformers' warm-up starts at zero (ours used to start at 0.1)
        ("cosine", 10, 1.0),
        ("cosine", 55, 0.5),
        ("linear", 55, 0.5),
        ("constant", 99, 1.0),
        ("onecycle", 0, 1 / 25),
        ("onecycle", 9, 1.0),
        ("onecycle", 99, 1 / 25 / 1e4),
    ],
)
def test_lr_curve_golden_points(kind, step, expected):
    assert lr_curve(kind, 100, 10)[step] == pytest.approx(expected)


def test_onecycle_without_warmup_starts_near_peak_and_steps_to_the_end():
    curve = lr_curve("onecycle", 50, 0)  # all 50 steps, no "stepped too often" error
    assert curve[0] == pytest.approx(1.0, abs=1e-3)
    assert curve[-1] == pytest.approx(1 / 25 / 1e4)
    with pytest.raises(ValueError, match="unknown lr_scheduler"):
        lr_curve("step", 10, 0)


def test_scheduler_peak_is_the_optimizer_rate():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=0.008)
    scheduler = make_scheduler(optimizer, "onecycle", 20, 5)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.008 / 25)


# --- one definition of a correct pair ------------------------------------------------------


def test_a_constant_model_scores_half_not_everything():
    zeros, ones = np.zeros(6), np.ones(6)
    out = metrics.evaluate_pairs(zeros, ones)
    assert out["accuracy"] == 0.5
    # Risk 0.5 at every coverage 1/6..1 (the trapezoid starts at the first pair).
    assert out["aurc"] == pytest.approx(0.5 * (1 - 1 / 6))
    assert out["ece"] == pytest.approx(0.0)  # confidence 0.5, credit 0.5
    assert robustness_accuracy(np.ones(4), np.ones(4)) == 0.5
    loop_acc = pair_credit_mean(torch.zeros(6), torch.zeros(6), torch.ones(6))
    assert loop_acc.item() == 0.5


def test_an_exact_score_tie_counts_half_everywhere():
    diff, label = np.array([1.0, 0.0, -1.0]), np.ones(3)
    assert metrics.accuracy(diff, label) == pytest.approx(0.5)
    # Most confident first (stable): pairs 0, 2, 1 with errors 0, 1, 0.5.
    expected = np.trapezoid([0.0, 0.5, 0.5], [1 / 3, 2 / 3, 1.0])
    assert metrics.aurc(diff, label) == pytest.approx(expected)
    assert robustness_accuracy(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0])) == 0.5
    cal = fit_calibration(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0]),
                          np.array([0.0, 1.0, 1.0]))  # fmt: skip
    assert cal.info["pair_accuracy"] == pytest.approx(0.5)


def test_loop_accuracy_is_the_metrics_accuracy():
    rng = np.random.default_rng(0)
    a, b = rng.integers(-2, 3, 40).astype(float), rng.integers(-2, 3, 40).astype(float)
    label = rng.choice([0.0, 0.5, 1.0], 40)
    loop = pair_credit_mean(torch.tensor(a), torch.tensor(b), torch.tensor(label)).item()
    assert loop == pytest.approx(metrics.accuracy(a - b, label))


def test_pair_credit_and_wilson_golden():
    assert pair_credit([3.0, 0.0, -0.1, np.nan]).tolist() == [1.0, 0.5, 0.0, 0.0]
    assert pair_accuracy([]) != pair_accuracy([])  # NaN for no pairs
    lo, hi = wilson_interval(8, 10)
    assert (lo, hi) == (pytest.approx(0.4901625, abs=1e-6), pytest.approx(0.9433178, abs=1e-6))
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_one_bradley_terry_fit_for_ranker_and_training():
    a, b, y = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 0]), np.array([1.0, 0.5, 1.0, 0.0])
    ranker_scores, _ = ranker_bt_fit(3, a, b, y)
    assert metrics.bradley_terry_fit(a, b, y, n=3) == pytest.approx(ranker_scores)
    assert metrics.sigmoid is expit_sigmoid


@pytest.mark.parametrize("warmup", [0, 1, 2, 3])
def test_onecycle_accepts_every_short_warmup(warmup):
    # torch's OneCycleLR divides by (warm-up steps - 1): one step used to raise.
    curve = lr_curve("onecycle", 6, warmup)
    assert len(curve) == 6 and max(curve) == pytest.approx(1.0, abs=0.2)
    assert curve[-1] == pytest.approx(1 / 25 / 1e4)
