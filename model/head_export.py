"""A project's online head, saved as an ordinary model folder.

The model in the loop (:mod:`ranker.attached`) learns a head on the attached model's
pooled embeddings from every vote: ``score = c * base(x) + w . x + b``, where ``base``
is the attached model's own linear head (``classifier``). That is itself one linear
layer on the pooled embedding, so the head leaves the project as a normal JoyQuality
checkpoint: the attached model's backbone, unchanged, with ``classifier.weight = c *
W + w`` and ``classifier.bias = c * b0 + b``. Its scores equal the head's (logits,
``sigmoid(s_a - s_b)`` = P(a preferred)) up to float rounding; the Scoring tab, the
Training tab (as a starting point) and ``python -m model.score`` load it like a run's
final folder.

Not in it: the per-image offsets (what each voted image's own votes add on top of the
head). They describe the project's images, not a model that scores new ones, so the
exported model ranks a voted image by the head alone. No ``calibration.json`` either:
the base model's buckets were fitted to other scores.

Layout: ``<data dir>/models/heads/project-<id>/`` (``config.json``,
``model.safetensors``, ``preprocessor_config.json``, ``head.json``, ``README.md``),
offered as ``head: <project name>`` (:mod:`model.named`). A new export of the same
project replaces the folder atomically.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from model.embeddings import backbone_fingerprint
from model.named import HEAD_INFO, HEAD_PREFIX, HEADS_DIRNAME


def head_folder(models_dir: str | Path, project_id: int) -> Path:
    """Where a project's head is exported (by id: a re-created project never overwrites
    the head of an older one with the same name)."""
    return Path(models_dir) / HEADS_DIRNAME / f"project-{int(project_id)}"


def head_classifier(model, head) -> tuple[torch.Tensor, torch.Tensor]:
    """``classifier.weight`` [1, hidden] and ``.bias`` [1] that score like ``head``
    (a :class:`ranker.attached.LinearHead`) on ``model``'s pooled embeddings."""
    weight = model.classifier.weight.detach().double().cpu().numpy()[0]
    bias = float(model.classifier.bias.detach().double().cpu().numpy()[0])
    w = np.asarray(head.weights, dtype=np.float64)
    if w.shape != weight.shape:
        raise ValueError(
            f"the head has {w.shape[0]} weights, the model's embeddings {weight.shape[0]} dims"
        )
    new_w = head.base_weight * weight + w
    new_b = head.base_weight * bias + head.bias
    return (
        torch.from_numpy(new_w[None, :]).float(),
        torch.tensor([new_b], dtype=torch.float32),
    )


def export_head(session, model, models_dir: str | Path) -> dict:
    """Save ``session``'s online head with ``model`` (the attached model, checked by its
    backbone fingerprint) as a model folder; returns its name and a summary."""
    info = session.attached_model
    if info is None:
        raise ValueError(f"project {session.name!r} has no model attached")
    fingerprint = backbone_fingerprint(model, info.get("precision", "fp32"))
    if info.get("fingerprint") and fingerprint != info["fingerprint"]:
        raise ValueError(
            f"the model {info.get('label') or info['source']!r} is not the one attached "
            "(its weights or precision differ): attach it again first"
        )
    head = session.online_head()
    weight, bias = head_classifier(model, head)
    state = {
        k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    state["classifier.weight"], state["classifier.bias"] = weight, bias
    folder = head_folder(models_dir, session.row.id)
    tmp = folder.with_name(f"{folder.name}.tmp{time.time_ns()}")
    model.save_pretrained(tmp, calibration=None, state_dict=state)
    (tmp / "calibration.json").unlink(missing_ok=True)  # the base model's own, if any
    summary = {
        "project": session.name,
        "base_model": info.get("label") or info["source"],
        "base_source": info["source"],
        "votes": head.votes,
        "model_on": head.model_on,
        "base_weight": head.base_weight,
        "exported_at": time.time(),
    }
    (tmp / HEAD_INFO).write_text(json.dumps(summary, indent=1) + "\n")
    (tmp / "README.md").write_text(_card(summary))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return {"name": f"{HEAD_PREFIX}{session.name}", **summary}


def _card(summary: dict) -> str:
    guard = (
        "The project's guard had the head ranking the project when it was exported."
        if summary["model_on"]
        else "When it was exported the project's guard had the head OFF: on the votes so "
        "far, the votes alone predicted new votes better than this head did."
    )
    return f"""# Online head of project "{summary["project"]}"

The preference head learnt while labeling project "{summary["project"]}" from
{summary["votes"]} votes, on the pooled embeddings of {summary["base_model"]}: that
model's backbone, unchanged, with a new linear head (`classifier`) whose score is the
project head's (Bradley-Terry logits: `sigmoid(s_a - s_b)` = P(a preferred to b)).
{guard}

Not included: the per-image offsets, i.e. what each voted image's own votes add to
the head's score. The project's `auto` ranking uses them; this model scores every
image, voted or not, by the head alone. No calibration.json: bucket with quantiles
or fit one from pairs.

Load it like a fine-tune's final folder: the score is
`classifier(vision_model(pixel_values).pooler_output)` (not the stock forward).
"""
