"""One decoder, one bomb limit: intake, model preprocessing and display copies agree."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from common import images
from common.images import ImageReadError, decode, flatten, to_rgb


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def test_one_limit_applies_to_every_reader(tmp_path: Path, monkeypatch):
    from model.preprocess import open_image
    from ranker.intake import inspect_file
    from ui.thumbnails import DisplayCache, DisplayError

    path = tmp_path / "big.png"
    path.write_bytes(_png((40, 30)))
    monkeypatch.setattr(images, "MAX_PIXELS", 40 * 30 - 1)
    with pytest.raises(ImageReadError, match="40x30 pixels.*decompression-bomb limit is 1,199"):
        decode(path)
    with pytest.raises(ImageReadError, match="too large"):
        inspect_file(path)
    with pytest.raises(ImageReadError, match="too large"):
        open_image(path)
    with pytest.raises(DisplayError, match="too large"):
        DisplayCache(tmp_path / "cache").ensure("abc", path, "thumb")
    monkeypatch.setattr(images, "MAX_PIXELS", 40 * 30)
    assert decode(path)[0].size == (40, 30)


def test_error_names_image_and_reason():
    with pytest.raises(ImageReadError, match=r"^x\.png: not an image \(empty") as exc:
        decode(b"", "x.png")
    assert (exc.value.name, exc.value.reason[:12]) == ("x.png", "not an image")
    with pytest.raises(ImageReadError, match=r"^<5 bytes>: not an image"):
        decode(b"hello")


def test_modes_are_kept_until_asked():
    img, fmt = decode(_png((2, 2), "LA"))
    assert (fmt, img.mode, to_rgb(img).mode) == ("PNG", "LA", "RGB")
    grey = flatten(Image.new("RGBA", (1, 1), (255, 0, 0, 0)), (128, 128, 128))
    assert grey.getpixel((0, 0)) == (128, 128, 128)
