"""Evaluation of a model on the test split: pair metrics, rank correlations, robustness.

Each test image is scored once (not once per pair it appears in); pair differences are
looked up from those scores. Under several processes every loader is sharded and the
scores are put back together with ``gather_for_metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from training import metrics
from training.batches import (
    EmbeddingImageDataset,
    ImageDataset,
    RobustnessDataset,
    model_input,
)
from training.data import PreferenceData
from training.robustness import KINDS, pick_images, robustness_accuracy


@dataclass
class EvalSet:
    """What an evaluation needs, built once per run.

    ``pair_a``/``pair_b`` are positions into the test-image list scored by ``images``;
    ``human`` holds the human score of each of those images (NaN where unknown).
    """

    images: DataLoader
    pair_a: np.ndarray
    pair_b: np.ndarray
    label: np.ndarray
    human: np.ndarray
    robustness: dict[str, DataLoader] = field(default_factory=dict)


def build_eval_set(
    data: PreferenceData,
    size: int,
    *,
    batch_size: int,
    num_workers: int,
    robustness_images: int,
    seed: int,
    embeddings: torch.Tensor | None = None,
) -> EvalSet:
    """Loaders over the test images (and their damaged copies) of ``data``.

    With ``embeddings`` (one cached vector per image of ``data``) the test images are
    scored from those; the robustness copies are new pixels and always take the full
    forward.
    """
    test_images = data.test_images()
    position = {int(g): i for i, g in enumerate(test_images)}
    loader_args = {"batch_size": batch_size, "num_workers": num_workers, "shuffle": False}
    if embeddings is not None:
        dataset = EmbeddingImageDataset(embeddings, test_images)
        images = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    else:
        dataset = ImageDataset(data.sources, data.keys, test_images, size)
        images = DataLoader(dataset, **loader_args)
    robust_images = pick_images(test_images, robustness_images, seed)
    robustness = {}
    if robust_images.size:
        for kind in KINDS:
            dataset = RobustnessDataset(data.sources, data.keys, robust_images, size, kind, seed)
            robustness[kind] = DataLoader(dataset, **loader_args)
    return EvalSet(
        images=images,
        pair_a=np.array([position[int(i)] for i in data.test.a], dtype=np.int64),
        pair_b=np.array([position[int(i)] for i in data.test.b], dtype=np.int64),
        label=data.test.label.astype(np.float64),
        human=np.array([data.human.get(int(g), np.nan) for g in test_images], dtype=np.float64),
        robustness=robustness,
    )


@torch.no_grad()
def score_loader(
    model: torch.nn.Module, loader: DataLoader, accelerator, keys=("pixels",)
) -> list[np.ndarray]:
    """Scores of every item of ``loader`` for each pixel key, in dataset order."""
    columns: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    positions: list[torch.Tensor] = []
    for batch in loader:
        for key in keys:
            scores = model(model_input(batch[key])).float()
            columns[key].append(accelerator.gather_for_metrics(scores).cpu())
        positions.append(accelerator.gather_for_metrics(batch["position"]).cpu())
    order = torch.cat(positions).numpy()
    out = []
    for key in keys:
        values = torch.cat(columns[key]).numpy().astype(np.float64)
        result = np.empty(order.size, dtype=np.float64)
        result[order] = values
        out.append(result)
    return out


def evaluate(
    model: torch.nn.Module, eval_set: EvalSet, accelerator
) -> tuple[dict[str, float], np.ndarray]:
    """All test metrics, and the score of each test image (for calibration).

    Keys: accuracy, nll, brier, ece, aurc (pairs), spearman, kendall (model order vs the
    human ranking of the test images), jpeg_accuracy and lowres_accuracy.
    """
    was_training = model.training
    model.eval()
    try:
        (scores,) = score_loader(model, eval_set.images, accelerator)
        diff = scores[eval_set.pair_a] - scores[eval_set.pair_b]
        result = metrics.evaluate_pairs(diff, eval_set.label)
        known = ~np.isnan(eval_set.human)
        if known.sum() >= 2:
            result["spearman"] = metrics.spearman(scores[known], eval_set.human[known])
            result["kendall"] = metrics.kendall(scores[known], eval_set.human[known])
        for kind, loader in eval_set.robustness.items():
            clean, damaged = score_loader(model, loader, accelerator, keys=("clean", "damaged"))
            result[f"{kind}_accuracy"] = robustness_accuracy(clean, damaged)
    finally:
        model.train(was_training)
    return result, scores
