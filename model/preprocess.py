"""Image decoding and JoyQuality preprocessing, exactly as upstream plus EXIF orientation.

Upstream feeds the model ``convert("RGB")``, a squash (no crop, aspect ratio ignored)
to the config's image size with PIL BICUBIC, scaling to [0, 1] and normalisation with
mean 0.5 / std 0.5. We add one thing: images are turned upright from their EXIF
orientation first, so a phone photo is scored the way people see it.

The work is split in two so data-loader workers ship compact ``uint8`` tensors (4x
less inter-process and host-to-device traffic) and the normalisation runs on the
device: :func:`to_uint8_tensor` in the worker, :func:`normalize` in the main process.
:func:`to_pixel_values` is the two together, for one image.

Example::

    img = open_image("photo.jpg")
    x = to_pixel_values(img, 512)          # FloatTensor [3, 512, 512] in [-1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.images import decode, to_rgb

IMAGE_MEAN = 0.5
IMAGE_STD = 0.5


def open_image(
    source: str | Path | bytes, *, name: str | None = None, draft_size: int | None = None
) -> Image.Image:
    """Decode an image file or its bytes into an upright RGB PIL image.

    The decoding is :func:`common.images.decode` (full decode, so truncated files fail
    now with their name instead of later inside a batch; the studio's one
    decompression-bomb limit; EXIF orientation), then upstream's ``convert("RGB")``.

    name: how to call the image in error messages (defaults to the path).
    draft_size: opt-in fast path for large JPEGs: let libjpeg decode at 1/2, 1/4 or
        1/8 scale while both sides stay >= draft_size (the model's input size). Several
        times faster on camera photos; pixels then differ slightly from upstream's.
    """
    img, _ = decode(source, name, draft_size=draft_size)
    return to_rgb(img)


def resize_squash(img: Image.Image, size: int) -> Image.Image:
    """Squash to ``size x size`` with PIL BICUBIC (aspect ratio ignored, no crop)."""
    if size <= 0:
        raise ValueError(f"image size must be positive, got {size}")
    if img.size == (size, size):
        return img
    return img.resize((size, size), Image.Resampling.BICUBIC)


def to_uint8_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """Resized RGB image as a ``uint8`` tensor ``[3, size, size]`` (what workers ship)."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(resize_squash(img, size), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def normalize(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``uint8`` pixels ``[..., 3, H, W]`` to model input: ``(x / 255 - 0.5) / 0.5``.

    Computed in fp32 (the same operations as the reference pipeline, so results match
    bit for bit), then cast to ``dtype``.
    """
    if pixels.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {pixels.dtype}")
    out = (pixels.to(torch.float32) / 255.0 - IMAGE_MEAN) / IMAGE_STD
    return out if dtype == torch.float32 else out.to(dtype)


def to_pixel_values(img: Image.Image, size: int) -> torch.Tensor:
    """One PIL image to a ``FloatTensor [3, size, size]`` ready for JoyQuality."""
    return normalize(to_uint8_tensor(img, size))


def load_pixel_values(source: str | Path | bytes, size: int) -> torch.Tensor:
    """Decode and preprocess one image file or bytes (raises ``ImageReadError``)."""
    return to_pixel_values(open_image(source), size)


def batch_pixel_values(
    sources: Sequence[str | Path | bytes | Image.Image], size: int
) -> torch.Tensor:
    """Stack several images (paths, bytes or PIL images) into ``[B, 3, size, size]``.

    Any unreadable image raises ``ImageReadError``; use :mod:`model.scoring` to score
    many images while reporting failures per image instead.
    """
    if len(sources) == 0:
        raise ValueError("no images given")
    tensors = [
        to_uint8_tensor(s if isinstance(s, Image.Image) else open_image(s), size) for s in sources
    ]
    return normalize(torch.stack(tensors))
