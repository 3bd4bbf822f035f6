"""The end of a run: calibrate, save the final model with a model card, optionally push.

The final folder is what the Scoring tab loads: ``config.json`` + ``model.safetensors``
in the ``SiglipForImageClassification`` layout, ``calibration.json`` (tau/b fitted on the
test split), plus ``train_config.json``, ``metrics.json`` and a ``README.md`` card.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from training.config import PRESET_LABELS, TrainConfig

log = logging.getLogger("training")

METRIC_NOTES = {
    "accuracy": "share of decisive test pairs ordered like the human",
    "nll": "Bradley-Terry negative log-likelihood (the training loss)",
    "brier": "mean squared error of the win probability",
    "ece": "expected calibration error, 15 bins",
    "aurc": "area under the risk-coverage curve (lower is better)",
    "spearman": "Spearman rho of the model order vs the human ranking of the test images",
    "kendall": "Kendall tau of the model order vs the human ranking of the test images",
    "jpeg_accuracy": "clean image beats its heavily JPEG-compressed copy",
    "lowres_accuracy": "clean image beats its downscaled-and-upscaled copy",
}


def fit_test_calibration(scores: np.ndarray, eval_set: Any, buckets: int):
    """The tau/b bucket calibration (method B) fitted on the test pairs' scores.

    Pairs are oriented winner-first (a tie keeps its order and label 0.5), so the
    calibration's recorded pair accuracy reads as usual.
    """
    from model.calibrate import fit_calibration

    flip = eval_set.label < 0.5
    first = np.where(flip, eval_set.pair_b, eval_set.pair_a)
    second = np.where(flip, eval_set.pair_a, eval_set.pair_b)
    labels = np.where(flip, 1.0 - eval_set.label, eval_set.label)
    return fit_calibration(scores, scores[first], scores[second], k=buckets, pair_labels=labels)


def model_card(config: TrainConfig, summary: dict[str, Any], result: Any) -> str:
    """A Hub model card: where the data came from, the settings, the final metrics."""
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
        f"| `{k}` | `{v}` |"
        for k, v in config.to_dict().items()
        if k not in ("output_dir", "push_to_hub", "hub_private")
    )
    preset = PRESET_LABELS.get(config.preset, "custom settings")
    return f"""---
base_model: {config.base_model}
library_name: transformers
pipeline_tag: image-classification
tags:
- image-quality-assessment
- joyquality
- preference-studio
{datasets}---

# JoyQuality fine-tune

A JoyQuality image-quality model fine-tuned on pairwise human preferences with
[Preference Studio]. Each image gets a latent Bradley-Terry score: `sigmoid(s_a - s_b)`
is the probability that A is preferred to B; sort by score to rank a dataset.

**Use the pooled output.** The weights load as `SiglipForImageClassification`, but its
stock forward mean-pools the patch tokens; the score is
`classifier(vision_model(pixel_values).pooler_output)`. Resize to the config's image
size with BICUBIC (no crop), scale to [0, 1], normalise with mean 0.5 / std 0.5.
`calibration.json` holds the tau/b bucket calibration fitted on the test split:
`rank = K * sigmoid((s - b) / tau)`.

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


def save_final(model, config: TrainConfig, files, eval_set, scores, data, result) -> Path:
    """Write the final folder (model, calibration, settings, metrics, card); push if asked."""
    folder = files.final_dir
    calibration = fit_test_calibration(scores, eval_set, config.calibration_buckets)
    model.save_pretrained(folder, calibration=calibration)
    config.save(folder)
    summary = data.summary()
    report = {
        "metrics": result.metrics,
        "history": result.history,
        "data": summary,
        "steps": result.steps,
        "samples": result.samples,
        "pairs_per_second": result.pairs_per_second,
    }
    (folder / "metrics.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    (folder / "README.md").write_text(model_card(config, summary, result))
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
