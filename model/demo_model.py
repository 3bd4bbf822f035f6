"""A small demo quality model, built on this machine in seconds: no download, not JoyQuality.

A newcomer offline (or anyone before the 1.7 GB JoyQuality download) still needs a
model to fine-tune and score with, or the loop never closes. This one is a tiny
SigLIP (the same class and file layout as JoyQuality, so every path that takes
JoyQuality takes it) trained from scratch on generated pairs: pictures drawn by the
demo generator from *other seeds* than the demo project's, each clean one preferred
to its blurred, noisy, JPEG-damaged or low-resolution copies, and mild damage
preferred to strong. It knows those four kinds of damage and nothing else about
quality; its folder says so in ``DEMO.md`` and its name starts with ``demo``.

It is built once per data folder and reused (``<data dir>/models/demo-quality``).

Example::

    folder = ensure_demo_model(data_dir / "models")
    model = load_model(folder)
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.demo_pictures import DAMAGE, SCENES, damage, draw_scene

if TYPE_CHECKING:  # torch loads only when the model is built: the tabs list it without torch
    import torch
    from transformers import SiglipConfig

    from model.joyquality import JoyQuality

DEMO_MODEL_DIRNAME = "demo-quality"
DEMO_MODEL_LABEL = "Demo quality model (tiny, built here; not JoyQuality)"
# What forms and the API call the demo model: a name, never the server folder it lives in.
DEMO_MODEL_NAME = "demo-quality"
README_NAME = "DEMO.md"
VERSION = 1  # bump when the recipe changes: older folders are rebuilt
IMAGE_SIZE = 128
VARIANTS = 4  # drawn pictures per scene kind
FIRST_SEED = 1000  # the demo project draws with seed 7; training never sees its pictures
STEPS = 150
BATCH_PAIRS = 16
log = logging.getLogger(__name__)


def demo_config() -> SiglipConfig:
    """2 layers of width 64 over 8x8 patches of a 128 px image (about 0.2 M parameters)."""
    from transformers import SiglipConfig

    vision = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=16,
    )
    return SiglipConfig(vision_config=vision, text_config={"vocab_size": 256000}, num_labels=1)


def demo_model_dir(models_dir: str | Path) -> Path:
    return Path(models_dir) / DEMO_MODEL_DIRNAME


def is_demo_model(source: str | Path) -> bool:
    """Whether ``source`` is a folder holding the demo model (for labels in the UI)."""
    return (Path(str(source)).expanduser() / README_NAME).is_file()


def _ready(folder: Path) -> bool:
    from model.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    marker = folder / README_NAME
    return (
        (folder / WEIGHTS_NAME).is_file()
        and (folder / CONFIG_NAME).is_file()
        and marker.is_file()
        and f"recipe version {VERSION}" in marker.read_text()
    )


def generated_pairs(seed: int = FIRST_SEED) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Pixels ``uint8 [N, 3, S, S]`` and (better, worse) index pairs from fresh pictures."""
    import torch

    from model.preprocess import to_uint8_tensor

    images: list[torch.Tensor] = []
    better: list[int] = []
    worse: list[int] = []
    for variant in range(VARIANTS):
        for s in range(len(SCENES)):
            rng = np.random.default_rng([seed, variant, s])
            clean = draw_scene(s, rng)
            index: dict[tuple[str, int], int] = {}
            for kind, level, param in DAMAGE:
                img = damage(clean, kind, param, rng)
                index[(kind, level)] = len(images)
                images.append(to_uint8_tensor(img, IMAGE_SIZE))
            for kind, level in index:
                if level > 0:  # clean beats every damaged copy, mild beats strong
                    better.append(index[("clean", 0)])
                    worse.append(index[(kind, level)])
                if level == 2:
                    better.append(index[(kind, 1)])
                    worse.append(index[(kind, 2)])
    return torch.stack(images), np.array(better), np.array(worse)


def train_demo_model(
    seed: int = 0, steps: int | None = None
) -> tuple[JoyQuality, dict[str, float]]:
    """Train the demo model from scratch; returns it (eval mode) and its training accuracy."""
    import torch

    from model.joyquality import JoyQuality
    from model.preprocess import normalize

    steps = STEPS if steps is None else steps
    torch.manual_seed(seed)
    pixels, better, worse = generated_pairs()
    inputs = normalize(pixels)
    model = JoyQuality(demo_config())
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        pick = rng.choice(better.size, size=min(BATCH_PAIRS, better.size), replace=False)
        scores = model(torch.cat([inputs[better[pick]], inputs[worse[pick]]]))
        win, lose = scores.chunk(2)
        loss = torch.nn.functional.softplus(lose - win).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(chunk) for chunk in inputs.split(64)])
    accuracy = float((scores[better] > scores[worse]).float().mean())
    return model, {"train_pair_accuracy": round(accuracy, 4), "pairs": int(better.size)}


def ensure_demo_model(models_dir: str | Path) -> Path:
    """The demo model's folder under ``models_dir``, built (about 10 s on 2 cores) if missing."""
    import torch

    folder = demo_model_dir(models_dir)
    if _ready(folder):
        return folder
    began = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    try:
        model, info = train_demo_model()
    finally:
        torch.set_num_threads(threads)
    tmp = folder.with_name(f"{folder.name}.tmp{time.time_ns()}")
    model.save_pretrained(tmp)
    (tmp / README_NAME).write_text(
        "# Demo quality model (not JoyQuality)\n\n"
        "A tiny SigLIP trained on this machine in seconds, from scratch, on generated "
        "pictures: each clean picture preferred to its blurred, noisy, JPEG-damaged and "
        "low-resolution copies, mild damage preferred to strong. It knows those kinds of "
        "damage and nothing else about quality. Use it to try the loop offline; use "
        "JoyQuality for real images.\n\n"
        f"recipe version {VERSION}; {info['pairs']} generated pairs, training pair "
        f"accuracy {info['train_pair_accuracy']:.2f}; built in "
        f"{time.perf_counter() - began:.1f} s\n"
    )
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    log.info("built the demo quality model in %s (%s)", folder, info)
    return folder


def hub_model_cached(repo_id: str) -> bool:
    """Whether a Hub model's weights are in the local Hugging Face cache (no network call)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "model.safetensors"), str)
    except Exception:  # noqa: BLE001 - a malformed id or cache: treat as not cached
        return False


def default_model_choice(models_dir: str | Path, hub_id: str) -> tuple[str, str]:
    """The model the Training and Scoring tabs preselect, and why (empty when obvious).

    JoyQuality when its weights are cached; else the demo model, which needs no download.
    """
    if hub_model_cached(hub_id):
        return hub_id, ""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    why = "offline mode is on (HF_HUB_OFFLINE)" if offline else "it is not downloaded yet (1.7 GB)"
    return DEMO_MODEL_NAME, (
        f"JoyQuality (`{hub_id}`) is preselected only when it is on this machine, and {why}: "
        "the **demo quality model** is selected instead. It is a tiny model built here in "
        "seconds from generated pictures (it knows blur, noise, JPEG and low resolution, "
        "nothing more), good for trying the whole loop offline. Pick JoyQuality to "
        "download it (online) for real images."
    )
