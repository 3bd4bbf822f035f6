"""Preprocessing matches the upstream PIL pipeline; bad files fail with their name."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from common.images import ImageReadError
from model.preprocess import (
    batch_pixel_values,
    normalize,
    open_image,
    to_pixel_values,
    to_uint8_tensor,
)
from tests.model.helpers import make_image


def reference_pipeline(path, size: int) -> torch.Tensor:
    """Upstream: convert("RGB"), BICUBIC squash, [0,1], (x - 0.5) / 0.5 (torchvision-free)."""
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0
    return (x - 0.5) / 0.5


@pytest.mark.parametrize("size", [32, 48])
@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_matches_reference_pipeline(tmp_path, size, ext):
    path = make_image(tmp_path / f"a{ext}", seed=7, size=(53, 21))
    ours = to_pixel_values(open_image(path), size)
    assert ours.shape == (3, size, size) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, reference_pipeline(path, size), rtol=0, atol=0)
    assert ours.min() >= -1.0 and ours.max() <= 1.0


def test_modes_are_converted_to_rgb(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (10, 20, 30, 0))
    gray = Image.new("L", (10, 10), 77)
    for i, img in enumerate((rgba, gray, rgba.convert("P"))):
        img.save(tmp_path / f"m{i}.png")
        assert open_image(tmp_path / f"m{i}.png").mode == "RGB"


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert Image.open(tmp_path / "rot.jpg").size == (40, 20)
    assert open_image(tmp_path / "rot.jpg").size == (20, 40)


def test_bytes_input_equals_file_input(tmp_path):
    path = make_image(tmp_path / "b.png", seed=3)
    a = to_pixel_values(open_image(path), 32)
    b = to_pixel_values(open_image(path.read_bytes()), 32)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "not an image"), (b"hello world", "not an image"), (None, "corrupt")],
)
def test_bad_files_raise_with_name_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is None:
        good = make_image(tmp_path / "good.jpg", size=(64, 64)).read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=rf"bad\.jpg.*{reason}"):
        open_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        open_image(tmp_path)


def test_decompression_bomb_limit_is_honoured(tmp_path, monkeypatch):
    path = make_image(tmp_path / "big.png", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="decompression-bomb"):
        open_image(path)


def test_uint8_then_normalize_equals_float_path(tmp_path):
    img = open_image(make_image(tmp_path / "c.webp", seed=2))
    u8 = to_uint8_tensor(img, 32)
    assert u8.dtype == torch.uint8
    torch.testing.assert_close(normalize(u8), to_pixel_values(img, 32), rtol=0, atol=0)
    assert normalize(u8, torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(TypeError, match="uint8"):
        normalize(u8.float())


def test_batch_helper(tmp_path):
    paths = [make_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    pil = Image.open(paths[0])
    batch = batch_pixel_values([paths[0], paths[1].read_bytes(), pil], 32)
    assert batch.shape == (3, 3, 32, 32)
    torch.testing.assert_close(batch[0], batch[2])
    with pytest.raises(ValueError, match="no images"):
        batch_pixel_values([], 32)


def test_in_memory_png_bytes_roundtrip():
    buf = io.BytesIO()
    Image.new("RGB", (5, 7), (1, 2, 3)).save(buf, format="PNG")
    assert open_image(buf.getvalue()).getpixel((0, 0)) == (1, 2, 3)


def test_fast_decode_is_close_to_exact_on_large_jpegs(tmp_path):
    yy, xx = np.mgrid[0:1100, 0:1300]
    arr = np.stack([(xx // 7) % 256, (yy // 5) % 256, (xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "big.jpg", quality=92)
    exact = to_pixel_values(open_image(tmp_path / "big.jpg"), 64)
    draft_img = open_image(tmp_path / "big.jpg", draft_size=64)
    assert draft_img.size == (163, 138)  # decoded at 1/8 scale, both sides still >= 64
    fast = to_pixel_values(draft_img, 64)
    assert (fast - exact).abs().mean() < 0.05
    small = make_image(tmp_path / "small.png", size=(40, 40))
    assert open_image(small, draft_size=32).size == (40, 40)  # not a JPEG: untouched
