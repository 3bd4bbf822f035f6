"""The JPEG and low-resolution robustness checks, built from the held-out test images.

Each test image gives one (clean, damaged) pair; a model passes a pair when the clean
image scores higher. Upstream's JoyQuality keeps more than 98% on both; a model that
forgot what quality is (or sees too few pixels) drops to 80-90%. The corruptions follow
upstream recipe (docs/joyquality.md) and are seeded per image, so every evaluation sees the same pairs.

Example::

    clean, damaged = jpeg_pair(img)
    clean, damaged = lowres_pair(img, np.random.default_rng(0))
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from common.maths import pair_accuracy

JPEG_QUALITIES = tuple(range(90, 10, -5))  # 90, 85, ..., 15
JPEG_SIZE_RATIO = 0.33
LOWRES_MAX_SIDE = 1024
LOWRES_SCALE = (0.5, 0.9)
UPSCALE_FILTERS = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)
KINDS = ("jpeg", "lowres")


def _jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def jpeg_pair(img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Clean image and its JPEG copy at the first quality in 90, 85, ..., 15 whose file
    is at most a third of the quality-90 file (quality 15 when none is that small)."""
    img = img.convert("RGB")
    reference = len(_jpeg_bytes(img, JPEG_QUALITIES[0]))
    data = b""
    for quality in JPEG_QUALITIES:
        data = _jpeg_bytes(img, quality)
        if len(data) <= JPEG_SIZE_RATIO * reference:
            break
    damaged = Image.open(io.BytesIO(data))
    damaged.load()
    return img, damaged.convert("RGB")


def lowres_pair(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    """Clean image (long side capped at 1024) and a copy downscaled by a uniform 0.5-0.9
    with LANCZOS, then upscaled back with a random one of BILINEAR/BICUBIC/LANCZOS."""
    img = img.convert("RGB")
    longest = max(img.size)
    if longest > LOWRES_MAX_SIDE:
        ratio = LOWRES_MAX_SIDE / longest
        size = (max(1, round(img.width * ratio)), max(1, round(img.height * ratio)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    factor = float(rng.uniform(*LOWRES_SCALE))
    small = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    down = img.resize(small, Image.Resampling.LANCZOS)
    upscale = UPSCALE_FILTERS[int(rng.integers(len(UPSCALE_FILTERS)))]
    return img, down.resize(img.size, upscale)


def damaged_pair(
    img: Image.Image, kind: str, seed: int, index: int
) -> tuple[Image.Image, Image.Image]:
    """The (clean, damaged) pair of one image for ``kind``, the same on every call."""
    if kind == "jpeg":
        return jpeg_pair(img)
    if kind == "lowres":
        return lowres_pair(img, np.random.default_rng([seed, index]))
    raise ValueError(f"unknown robustness check {kind!r}; choose one of {KINDS}")


def robustness_accuracy(clean_scores: np.ndarray, damaged_scores: np.ndarray) -> float:
    """Mean pair credit of clean over damaged: 1 when the clean image scores strictly
    higher, 0.5 on an exact tie (:func:`common.maths.pair_credit`)."""
    clean = np.asarray(clean_scores, dtype=np.float64)
    damaged = np.asarray(damaged_scores, dtype=np.float64)
    if clean.shape != damaged.shape or clean.size == 0:
        raise ValueError("need the same, non-zero number of clean and damaged scores")
    return pair_accuracy(clean - damaged)


def pick_images(test_images: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """A seeded subset of at most ``limit`` test images (all when there are fewer)."""
    images = np.asarray(test_images)
    if limit <= 0:
        return images[:0]
    if images.size <= limit:
        return images
    chosen = np.random.default_rng(seed).choice(images.size, size=limit, replace=False)
    return images[np.sort(chosen)]
