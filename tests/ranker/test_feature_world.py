"""The model-in-the-loop bench world: agreements mean what the README says they mean."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _agreement(head, q, scale, rng):
    """Share of a 90% labeler's votes on random pairs that ``head`` orders alike."""
    i, j = rng.integers(len(q), size=(2, 200_000))
    i, j = i[i != j], j[i != j]
    p_i = ndtr((q[i] - q[j]) / scale)
    return float(np.mean(np.where(head[i] > head[j], p_i, 1 - p_i)))


@pytest.mark.parametrize("best", [0.8, 0.85, 0.9])
def test_agreement_is_with_the_labelers_votes(best):
    world_mod, rank_bench = _load("feature_world"), _load("rank_bench")
    scale = rank_bench.noise_scale(0.9, "thurstone")
    world = world_mod.make_world(4000, 48, best, seed=3, labeler_agreement=0.9)
    rng = np.random.default_rng(0)
    q = world.quality
    assert _agreement(world.best_scores, q, scale, rng) == pytest.approx(best, abs=0.01)
    assert _agreement(world.base_scores, q, scale, rng) == pytest.approx(0.75, abs=0.01)
    # the labelers themselves agree 90% with the truth, so a head agreeing 90% with
    # their votes is the truth itself
    assert _agreement(q, q, scale, rng) == pytest.approx(0.9, abs=0.01)
    truth = np.mean(np.sign(np.subtract.outer(world.best_scores[:800], world.best_scores[:800]))
                    == np.sign(np.subtract.outer(q[:800], q[:800])))  # fmt: skip
    expected = world_mod.truth_agreement(best, 0.9)
    assert (truth - 1 / 800) / (1 - 1 / 800) == pytest.approx(expected, abs=0.015)


def test_a_head_cannot_agree_more_than_the_labelers_do():
    world_mod = _load("feature_world")
    with pytest.raises(ValueError, match="no head agrees"):
        world_mod.make_world(100, 8, 0.95, seed=0, labeler_agreement=0.9)
