"""The end of a run: calibrate, save the final model with a model card, optionally push.

The final folder is what the Scoring tab loads: ``config.json`` + ``model.safetensors``
in the ``SiglipForImageClassification`` layout (upstream JoyQuality's own
``score-images.py`` loads it), ``preprocessor_config.json``, ``calibration.json``, plus
``train_config.json``, ``metrics.json`` and a ``README.md`` card whose snippet loads
the model with the right forward.

Calibration honesty: the tau/b calibration is fitted on the test pairs, so its quality
is reported by cross-fitting (tau fitted on one half of the test pairs, judged on the
other half, and the other way round); the uncalibrated test metrics do not depend on
it. Below :data:`MIN_CALIBRATION_PAIRS` decisive test pairs no tau is fitted at all:
quantile buckets over the test images' scores are saved instead, and the card says so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from common.maths import wilson_interval
from training.config import PRESET_LABELS, TrainConfig

log = logging.getLogger("training")

MIN_CALIBRATION_PAIRS = 50  # decisive held-out pairs needed to fit tau (25 per fold)
MIN_TRAIN_PAIRS = 500  # below this a fine-tune mostly memorises
MIN_TEST_PAIRS = 100  # below this accuracy's 95% interval is wider than about +-10 points
CROSS_FIT_FOLDS = 2
# Settings left off the model card: where to push, and server folders (a card may be public).
CARD_HIDDEN = (
    "output_dir", "push_to_hub", "hub_private", "data_roots", "studio_db", "embedding_dir",
)  # fmt: skip

METRIC_NOTES = {
    "accuracy": "mean credit over decisive test pairs: winner scored higher 1, exact tie 0.5",
    "nll": "Bradley-Terry negative log-likelihood (the training loss)",
    "brier": "mean squared error of the win probability",
    "ece": "expected calibration error, 15 bins",
    "aurc": "area under the risk-coverage curve (lower is better)",
    "spearman": "Spearman rho of the model order vs the human ranking of the test images",
    "kendall": "Kendall tau of the model order vs the human ranking of the test images",
    "jpeg_accuracy": "clean image beats its heavily JPEG-compressed copy",
    "lowres_accuracy": "clean image beats its downscaled-and-upscaled copy",
}

# One way to load a saved model with the right forward; the README shows it too and a
# test runs both. ``{path}`` is the Hub id or folder.
LOADING_SNIPPET = """\
import torch
from PIL import Image, ImageOps
from transformers import AutoImageProcessor, SiglipForImageClassification

path = "{path}"  # a Hub model id or a run's final/ folder
model = SiglipForImageClassification.from_pretrained(path).eval()
# PIL BICUBIC squash, as in training (transformers 4.x: use_fast=False instead of backend).
processor = AutoImageProcessor.from_pretrained(path, backend="pil")


@torch.no_grad()
def quality_scores(files: list[str]) -> torch.Tensor:
    images = [ImageOps.exif_transpose(Image.open(f)).convert("RGB") for f in files]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    # Not model(pixels): the stock forward mean-pools the patch tokens. The score is the
    # head on the attention-pooled output.
    pooled = model.vision_model(pixel_values=pixels).pooler_output
    return model.classifier(pooled).squeeze(-1)
"""


def _oriented_pairs(scores: np.ndarray, eval_set: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Winner-first score pairs and labels (a tie keeps its order and label 0.5)."""
    flip = eval_set.label < 0.5
    first = np.where(flip, eval_set.pair_b, eval_set.pair_a)
    second = np.where(flip, eval_set.pair_a, eval_set.pair_b)
    labels = np.where(flip, 1.0 - eval_set.label, eval_set.label)
    return scores[first], scores[second], labels


def cross_fitted_quality(
    s_first: np.ndarray, s_second: np.ndarray, labels: np.ndarray, seed: int
) -> dict[str, Any]:
    """Calibrated NLL and ECE of tau judged only on pairs it was not fitted on.

    The pairs are split into :data:`CROSS_FIT_FOLDS` seeded folds; each fold's pairs are
    scored with the tau fitted on the others, and the metrics are taken over all of them.
    """
    from model.calibrate import fit_tau
    from training import metrics

    fold = np.random.default_rng(seed).permutation(labels.size) % CROSS_FIT_FOLDS
    scaled = np.empty(labels.size)
    taus = []
    for k in range(CROSS_FIT_FOLDS):
        fit, held = fold != k, fold == k
        tau = fit_tau(s_first[fit], s_second[fit], labels=labels[fit])
        taus.append(tau)
        scaled[held] = (s_first[held] - s_second[held]) / tau
    return {
        "folds": CROSS_FIT_FOLDS,
        "taus": taus,
        "calibrated_nll": metrics.nll(scaled, labels),
        "calibrated_ece": metrics.ece(scaled, labels),
    }


def fit_test_calibration(scores: np.ndarray, eval_set: Any, buckets: int, seed: int = 0):
    """The calibration saved with the model, with ``info`` saying how it was made.

    Enough decisive test pairs: the tau/b bucket calibration (method B) fitted on all
    test pairs, with its quality cross-fitted. Too few: quantile buckets over the test
    images' scores (no tau: a tau from a handful of pairs is noise), and ``info`` says why.
    """
    from model.calibrate import fit_calibration, quantile_calibration

    s_first, s_second, labels = _oriented_pairs(scores, eval_set)
    decisive = int(np.sum(labels != 0.5))
    if decisive < MIN_CALIBRATION_PAIRS:
        cal = quantile_calibration(scores, k=buckets)
        cal.info.update(
            fallback=f"only {decisive} decisive test pairs (a tau needs at least "
            f"{MIN_CALIBRATION_PAIRS}): quantile buckets over the test images' scores",
            n_pairs=int(labels.size),
        )
        return cal
    cal = fit_calibration(scores, s_first, s_second, k=buckets, pair_labels=labels)
    cal.info["cross_fit"] = cross_fitted_quality(s_first, s_second, labels, seed)
    return cal


def calibration_text(calibration: Any) -> str:
    """The card's paragraph on how calibration.json was made."""
    if calibration.method != "sigmoid":
        return (
            f"`calibration.json` holds **{calibration.method} buckets**, not a fitted tau: "
            f"{calibration.info.get('fallback', '')}."
        )
    cross = calibration.info.get("cross_fit", {})
    return (
        "`calibration.json` holds the tau/b bucket calibration, "
        "`rank = K * sigmoid((s - b) / tau)`, with tau fitted on the "
        f"{calibration.info.get('n_pairs')} test pairs. Its quality is cross-fitted "
        f"({cross.get('folds')} folds: each half's pairs judged with the tau fitted on the "
        f"other half): calibrated NLL {cross.get('calibrated_nll', float('nan')):.4f}, "
        f"calibrated ECE {cross.get('calibrated_ece', float('nan')):.4f}. The test metrics "
        "below use the raw scores and do not depend on the calibration."
    )


def data_warnings(summary: dict[str, Any]) -> list[str]:
    """Warnings for the card when the train or test split is too small to mean much."""
    out = []
    train, test = summary.get("train_pairs") or 0, summary.get("test_pairs") or 0
    if train < MIN_TRAIN_PAIRS:
        out.append(
            f"Only {train} training pairs (fewer than {MIN_TRAIN_PAIRS}): the model has "
            "seen too little to generalise much beyond these images."
        )
    if test < MIN_TEST_PAIRS:
        out.append(
            f"Only {test} test pairs (fewer than {MIN_TEST_PAIRS}): the test metrics are "
            "rough; see the accuracy's 95% interval."
        )
    return out


def accuracy_line(metrics: dict[str, Any], decisive: int) -> str:
    """Test accuracy with its Wilson 95% interval over the decisive test pairs."""
    acc = metrics.get("accuracy")
    if not isinstance(acc, float) or not decisive or np.isnan(acc):
        return "Test accuracy: not measured (no decisive test pairs)."
    lo, hi = wilson_interval(acc * decisive, decisive)
    return (
        f"Test accuracy: **{acc:.1%}** (95% Wilson interval {lo:.1%} to {hi:.1%}, "
        f"{decisive} decisive test pairs)."
    )


def model_card(
    config: TrainConfig,
    summary: dict[str, Any],
    result: Any,
    calibration: Any = None,
    decisive_test_pairs: int = 0,
) -> str:
    """A Hub model card: how to load it, the data, the settings, the final metrics.

    No ``pipeline_tag`` and ``inference: false``: the Hub widget and ``pipeline()`` would
    run the stock forward, which mean-pools and gives wrong scores without an error.
    """
    data_line = summary.get("source", config.data)
    datasets = ""
    hub_dataset = config.data_kind in ("dataset", "auto") and config.data.count("/") == 1
    if hub_dataset and not Path(config.data).exists():
        datasets = f"datasets:\n- {config.data}\n"
    rows = "\n".join(
        f"| {k} | {v:.4f} | {METRIC_NOTES.get(k, '')} |"
        for k, v in result.metrics.items()
        if k not in ("step", "samples") and isinstance(v, float)
    )
    settings = "\n".join(
        f"| `{k}` | `{v}` |" for k, v in config.to_dict().items() if k not in CARD_HIDDEN
    )
    preset = PRESET_LABELS.get(config.preset, "custom settings")
    warnings = "".join(f"> **Warning:** {w}\n>\n" for w in data_warnings(summary))
    warnings = warnings.removesuffix(">\n") + ("\n" if warnings else "")
    snippet = LOADING_SNIPPET.format(path=config.push_to_hub or "path/to/final")
    calibration_note = calibration_text(calibration) if calibration is not None else ""
    return f"""---
base_model: {config.base_model}
library_name: transformers
inference: false
tags:
- image-quality-assessment
- joyquality
- preference-studio
{datasets}---

# JoyQuality fine-tune

A JoyQuality image-quality model fine-tuned on pairwise human preferences with
[Preference Studio]. Each image gets a latent Bradley-Terry score: `sigmoid(s_a - s_b)`
is the probability that A is preferred to B; sort by score to rank a dataset.

{warnings}{accuracy_line(result.metrics, decisive_test_pairs)}

## How to load it

**Use the pooled output.** The weights load as `SiglipForImageClassification` (the
layout of upstream JoyQuality, whose `score-images.py` also loads them), but that
class's stock forward mean-pools the patch tokens; the score is
`classifier(vision_model(pixel_values).pooler_output)`. `preprocessor_config.json`
resizes as in training: squash to the config's image size with BICUBIC (no crop),
scale to [0, 1], normalise with mean 0.5 / std 0.5.

```python
{snippet}```

{calibration_note}

## Data

- Source: {data_line}
- Training pairs: {summary.get("train_pairs")}; test pairs: {summary.get("test_pairs")} over
  {summary.get("test_images")} test images ({summary.get("train_test_overlap")} of them also in training)
- Ties train as soft labels (0.5); share of ties in training: {summary.get("train_tie_share")}
- Human ranking for Spearman/Kendall: {summary.get("human_ranking")}

## Training

{preset}; {result.steps} optimizer steps of {config.batch_size} pairs ({result.samples} pairs).

| setting | value |
|---|---|
{settings}

## Test metrics (final)

| metric | value | meaning |
|---|---|---|
{rows}

[Preference Studio]: https://huggingface.co/spaces
"""


def save_final(
    model, config: TrainConfig, files, eval_set, scores, data, result, state_dict=None
) -> Path:
    """Write the final folder (model, calibration, settings, metrics, card); push if asked.

    ``state_dict`` is the full state from ``accelerator.get_state_dict`` (gathered on
    every process, so sharded strategies save whole weights); None uses the model's own.
    """
    from training import metrics

    folder = files.final_dir
    calibration = fit_test_calibration(scores, eval_set, config.calibration_buckets, config.seed)
    model.save_pretrained(folder, calibration=calibration, state_dict=state_dict)
    config.save(folder)
    summary = data.summary()
    decisive = metrics.decisive_count(eval_set.label)
    acc = result.metrics.get("accuracy")
    interval = wilson_interval(acc * decisive, decisive) if isinstance(acc, float) else None
    report = {
        "metrics": result.metrics,
        "accuracy_interval_95": interval,
        "decisive_test_pairs": decisive,
        "calibration": calibration.to_dict(),
        "history": result.history,
        "data": summary,
        "steps": result.steps,
        "samples": result.samples,
        "pairs_per_second": result.pairs_per_second,
    }
    (folder / "metrics.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    card = model_card(config, summary, result, calibration, decisive)
    (folder / "README.md").write_text(card)
    if config.push_to_hub:
        push_model(folder, config.push_to_hub, private=config.hub_private)
    return folder


def push_model(
    folder: Path, repo_id: str, *, private: bool = True, token: str | None = None
) -> str:
    """Upload the final folder to a Hub model repo (created if needed); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, commit_message="Preference Studio fine-tune"
    )
    log.info("pushed %s to %s", folder, repo_id)
    return str(getattr(info, "commit_url", repo_id))
