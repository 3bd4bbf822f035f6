"""Batched scoring: every image gets a row, failures by name; win probability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.contracts import SCORE_COLUMNS
from model.calibrate import Calibration
from model.joyquality import build_tiny_model
from model.preprocess import batch_pixel_values
from model.scoring import failed, score_images, win_probability
from model.sources import walk_files
from tests.model.helpers import make_folder


@pytest.fixture(scope="module")
def model():
    return build_tiny_model(seed=0)


def test_sidecar_names_match_the_ranking_intake():
    from model.sources import SIDECAR_FILES
    from ranker.intake import CONTEXT_FILES

    assert frozenset(CONTEXT_FILES) == SIDECAR_FILES


def test_folder_with_corrupt_and_non_image_files(tmp_path, model):
    good, broken = make_folder(tmp_path, 7)
    (tmp_path / "caption.txt").write_text("a cat")
    (tmp_path / "context.json").write_text("{}")  # a ranking folder's sidecar: not scored
    items = list(walk_files(tmp_path))
    assert str(tmp_path / "context.json") not in items
    rows = score_images(model, items, batch_size=3, num_workers=2)
    assert [r["path"] for r in rows] == items
    assert all(tuple(r) == SCORE_COLUMNS for r in rows)
    reasons = dict(failed(rows))
    assert set(reasons) == {str(p) for p in broken} | {str(tmp_path / "caption.txt")}
    assert "Truncated" in reasons[str(tmp_path / "truncated.jpg")]
    assert reasons[str(tmp_path / "notes.png")] == "not an image (unknown format)"
    ok = [r for r in rows if r["error"] is None]
    assert len(ok) == len(good) and all(math.isfinite(r["score"]) for r in ok)
    assert all(math.isnan(r["score"]) for r in rows if r["error"] is not None)


def test_scores_match_direct_forward_and_do_not_depend_on_batching(tmp_path, model):
    good, _ = make_folder(tmp_path, 5, bad=False)
    items = [str(p) for p in good]
    with torch.no_grad():
        direct = model(batch_pixel_values(items, model.image_size)).numpy()
    for batch_size, workers in ((1, 0), (2, 1), (5, 2)):
        rows = score_images(model, items, batch_size=batch_size, num_workers=workers)
        np.testing.assert_allclose([r["score"] for r in rows], direct, rtol=1e-5, atol=1e-6)


def test_bytes_items_and_buckets_and_progress(tmp_path, model):
    good, _ = make_folder(tmp_path, 4, bad=False)
    items = [(p.name, p.read_bytes()) for p in good] + [("broken.bin", b"\x00\x01")]
    seen = []
    cal = Calibration(tau=1.0, b=0.0)
    rows = score_images(
        model,
        items,
        batch_size=2,
        num_workers=0,
        calibration=cal,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (5, 5)
    assert rows[-1]["path"] == "broken.bin" and rows[-1]["bucket"] is None
    assert [r["bucket"] for r in rows[:-1]] == cal.labels_for([r["score"] for r in rows[:-1]])


def test_model_calibration_is_used_by_default(tmp_path):
    model = build_tiny_model()
    model.calibration = Calibration(method="equal_width", K=2, labels=("bad", "good"), edges=(0.0,))
    good, _ = make_folder(tmp_path, 2, bad=False)
    rows = score_images(model, [str(p) for p in good], num_workers=0)
    assert {r["bucket"] for r in rows} <= {"bad", "good"}


def test_win_probability():
    assert win_probability(0.0, 0.0) == 0.5
    assert win_probability(1.0, 0.0) == pytest.approx(1 / (1 + math.exp(-1)))
    assert win_probability(2.0, 3.0) + win_probability(3.0, 2.0) == pytest.approx(1.0)
    np.testing.assert_allclose(win_probability([1000.0, -1000.0], 0.0), [1.0, 0.0])
    assert win_probability(np.array([0.1, 0.2]), np.array([0.1, 0.1])).shape == (2,)


def test_bad_batch_size(model):
    with pytest.raises(ValueError, match="batch_size"):
        score_images(model, ["x.jpg"], batch_size=0)
