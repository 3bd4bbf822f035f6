"""The saved calibration and the model card: held-out calibration quality, the fallback
below the minimum of pairs, small-data warnings and the accuracy interval."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from training.config import TrainConfig
from training.export import (
    MIN_CALIBRATION_PAIRS,
    fit_test_calibration,
    model_card,
)


def eval_set(n_pairs: int, n_images: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    quality = rng.normal(0, 2, n_images)
    a, b = rng.integers(0, n_images, n_pairs), rng.integers(0, n_images, n_pairs)
    b = np.where(a == b, (b + 1) % n_images, b)
    label = (rng.random(n_pairs) < 1 / (1 + np.exp(-(quality[a] - quality[b])))).astype(float)
    scores = quality + rng.normal(0, 0.3, n_images)
    return scores, SimpleNamespace(pair_a=a, pair_b=b, label=label)


def test_enough_pairs_fit_tau_and_report_it_cross_fitted():
    scores, es = eval_set(400)
    cal = fit_test_calibration(scores, es, buckets=5)
    assert cal.method == "sigmoid" and cal.info["n_pairs"] == 400
    cross = cal.info["cross_fit"]
    assert cross["folds"] == 2 and len(cross["taus"]) == 2
    # Held-out quality is a real number and no better than the in-sample fit would claim.
    assert 0 < cross["calibrated_nll"] < 1 and 0 <= cross["calibrated_ece"] < 0.2


def test_too_few_pairs_fall_back_to_quantile_buckets_and_say_so():
    scores, es = eval_set(MIN_CALIBRATION_PAIRS - 1)
    cal = fit_test_calibration(scores, es, buckets=5)
    assert cal.method == "quantile" and "quantile buckets" in cal.info["fallback"]
    counts = np.bincount(cal.buckets(scores), minlength=5)
    assert counts.min() >= 11  # 60 images in 5 equal-count buckets


def card(train_pairs: int, test_pairs: int, calibration, accuracy: float = 0.8) -> str:
    config = TrainConfig(data="pairs.json", push_to_hub="me/model")
    summary = {"train_pairs": train_pairs, "test_pairs": test_pairs}
    result = SimpleNamespace(metrics={"accuracy": accuracy}, steps=1, samples=256)
    return model_card(config, summary, result, calibration, test_pairs)


def test_card_has_no_pipeline_tag_and_shows_the_loading_snippet():
    scores, es = eval_set(400)
    text = card(5000, 400, fit_test_calibration(scores, es, 5))
    front = text.split("---")[1]
    assert "pipeline_tag" not in front and "inference: false" in front
    assert 'path = "me/model"' in text and ".pooler_output" in text
    assert "cross-fitted" in text and "Warning" not in text
    assert "95% Wilson interval 75.8% to 83.6%" in text  # 320 of 400


def test_card_warns_on_small_data_and_names_the_fallback():
    scores, es = eval_set(30)
    text = card(120, 30, fit_test_calibration(scores, es, 5))
    assert "Only 120 training pairs" in text and "Only 30 test pairs" in text
    assert "quantile buckets" in text and "not a fitted tau" in text
    assert "30 decisive test pairs" in text
