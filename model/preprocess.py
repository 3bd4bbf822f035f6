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

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_MEAN = 0.5
IMAGE_STD = 0.5


class ImageReadError(ValueError):
    """An image could not be decoded; the message names the file and the reason."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"cannot read image {name!r}: {reason}")
        self.name = name
        self.reason = reason


def _describe(source: str | Path | bytes) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    return str(source)


def open_image(
    source: str | Path | bytes, *, name: str | None = None, draft_size: int | None = None
) -> Image.Image:
    """Decode an image file or its bytes into an upright RGB PIL image.

    The whole image is decoded here (not lazily) so truncated files fail now, with
    their name, instead of later inside a batch. Pillow's decompression-bomb limit
    (``Image.MAX_IMAGE_PIXELS``) is honoured: larger images raise ``ImageReadError``.

    name: how to call the image in error messages (defaults to the path).
    draft_size: opt-in fast path for large JPEGs: let libjpeg decode at 1/2, 1/4 or
        1/8 scale while both sides stay >= draft_size (the model's input size). Several
        times faster on camera photos; pixels then differ slightly from upstream's.
    """
    label = name or _describe(source)
    try:
        fp = (
            io.BytesIO(bytes(source))
            if isinstance(source, bytes | bytearray | memoryview)
            else source
        )
        with warnings.catch_warnings():
            # Above the limit Pillow warns, above twice the limit it raises: treat both as errors.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                if draft_size and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                img.load()
                img = ImageOps.exif_transpose(img)
                if img.mode == "P" and "transparency" in img.info:
                    img = img.convert("RGBA")  # same colours as upstream, without Pillow's warning
                return img.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(label, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(label, "is a directory") from None
    except UnidentifiedImageError:
        raise ImageReadError(label, "not an image (unknown format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(label, f"too large (decompression-bomb limit): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt data (OSError), broken headers (SyntaxError/ValueError).
        raise ImageReadError(
            label, f"corrupt or unsupported ({type(exc).__name__}: {exc})"
        ) from None


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
