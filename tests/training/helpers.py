"""Generated data for training tests: clean images vs blurred / JPEG-damaged copies."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model.joyquality import build_tiny_model


def clean_image(rng: np.random.Generator, size: int = 32) -> Image.Image:
    """Random shapes with hard edges over a checker texture: lots of fine detail."""
    yy, xx = np.mgrid[0:size, 0:size]
    period = int(rng.integers(2, 4))
    checker = ((xx // period + yy // period) % 2) * 255
    base = np.stack([checker * rng.uniform(0.3, 1.0) for _ in range(3)], axis=-1)
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.integers(0, size - 4, 2)
        x1, y1 = x0 + rng.integers(3, size // 2), y0 + rng.integers(3, size // 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rectangle([int(x0), int(y0), int(x1), int(y1)], fill=colour)
    return img


def damage(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Blur, or a quality-5 JPEG round trip."""
    if rng.random() < 0.5:
        return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1.5, 2.5))))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=5)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def make_quality_task(
    folder: Path, n_train: int = 24, n_test: int = 8, size: int = 32, seed: int = 0
) -> Path:
    """Write PNGs and a JoyQuality JSON: each clean image beats damaged copies.

    Train and test use disjoint source images. Pairs: clean vs its own damaged copy and
    clean vs another image's damaged copy; half are written loser-first with label -1 (upstream JoyQuality's format).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, count in (("train", n_train), ("test", n_test)):
        clean, bad = [], []
        for i in range(count):
            img = clean_image(rng, size)
            clean.append(f"{split}_{i}_clean.png")
            bad.append(f"{split}_{i}_bad.png")
            img.save(folder / clean[-1])
            damage(img, rng).save(folder / bad[-1])
        rows = []
        for i in range(count):
            for j in (i, (i + 1) % count):
                rows.append([clean[i], bad[j], 1] if rng.random() < 0.5 else [bad[j], clean[i], -1])
        splits[split] = rows
    path = folder / "pairs.json"
    path.write_text(json.dumps(splits))
    return path


def save_tiny_base(folder: Path, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny random JoyQuality saved as a base model folder."""
    return build_tiny_model(seed=seed, image_size=image_size).save_pretrained(folder)
