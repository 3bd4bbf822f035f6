"""The one image decoder: every image the studio reads goes through :func:`decode`.

Intake (:mod:`ranker.intake`), dataset import (:mod:`prefdata.imported`), model
preprocessing (:mod:`model.preprocess`) and the display copies (:mod:`ui.thumbnails`)
all decode here, so they agree on what an image is:

- one decompression-bomb limit, :data:`MAX_PIXELS`, checked from the header before
  any pixel is decoded (Pillow's own warning is turned into the same error, for a
  caller that lowers ``Image.MAX_IMAGE_PIXELS``);
- EXIF orientation applied, so a phone photo is used the way people see it;
- the first frame of an animation;
- a full decode, so a truncated file fails here, with its name, not later in a batch;
- one error, :class:`ImageReadError`, naming the image and the reason.

Example:
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("P", (3, 2)).save(buf, "PNG")
    >>> img, fmt = decode(buf.getvalue(), "x.png")
    >>> fmt, img.size, to_rgb(img).mode
    ('PNG', (3, 2), 'RGB')
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 50_000_000
"""Pixels per image (width x height). Larger files are refused as decompression bombs:
a 50 MP image is already larger than any camera photo the studio is meant for, and a
few-kB PNG can claim a canvas that needs gigabytes once decoded."""

ImageSource = str | Path | bytes | bytearray | memoryview


class ImageReadError(ValueError):
    """An image that cannot be decoded; ``name`` and ``reason`` say which and why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def describe(source: ImageSource) -> str:
    """How to name ``source`` in an error: its path, or its size when it is bytes."""
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    return str(source)


def decode(
    source: ImageSource, name: str | None = None, *, draft_size: int | None = None
) -> tuple[Image.Image, str]:
    """Decode a file or its bytes fully: (upright first frame, format such as ``"PNG"``).

    name: how to call the image in errors (defaults to the path, or the byte count).
    draft_size: opt-in fast path for large JPEGs: libjpeg decodes at 1/2, 1/4 or 1/8
        scale while both sides stay >= draft_size (thumbnails, model inputs).
    Raises :class:`ImageReadError` for a missing, empty, unknown, corrupt or too
    large image; the mode is kept (see :func:`to_rgb`).
    """
    label = name or describe(source)
    if isinstance(source, bytes | bytearray | memoryview):
        if not len(source):
            raise ImageReadError(label, "not an image (empty file, 0 bytes)")
        fp = io.BytesIO(bytes(source))
    else:
        fp = source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                fmt = img.format or "unknown"
                if img.width * img.height > MAX_PIXELS:
                    raise ImageReadError(label, _too_large(f"{img.width}x{img.height} pixels"))
                img.seek(0)
                if draft_size and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                img.load()
                return ImageOps.exif_transpose(img), fmt
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(label, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(label, "is a directory") from None
    except UnidentifiedImageError:
        raise ImageReadError(label, "not an image (unknown format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(label, _too_large(str(exc))) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # truncated or corrupt data (OSError), broken headers (SyntaxError/ValueError)
        raise ImageReadError(label, f"corrupt or truncated image ({exc})") from None


def _too_large(what: str) -> str:
    return f"too large to decode safely ({what}; the decompression-bomb limit is {MAX_PIXELS:,} pixels)"


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB as upstream JoyQuality feeds its model (``convert("RGB")``); a palette image
    with transparency goes through RGBA first (same colours, without Pillow's warning)."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """RGB with transparent pixels shown on ``background`` (display copies)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")
