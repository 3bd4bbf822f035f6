"""Small generated images for the ranker tests (no files are committed)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def make_images(folder: Path, n: int, size: tuple[int, int] = (24, 16)) -> list[Path]:
    """``n`` distinct small PNGs named img000.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = Image.new("RGB", size, ((37 * i) % 256, (91 * i) % 256, (i * 13) % 256))
        img.putpixel((i % size[0], 0), (255 - i % 256, 1, 2))
        path = folder / f"img{i:03d}.png"
        img.save(path)
        paths.append(path)
    return paths
