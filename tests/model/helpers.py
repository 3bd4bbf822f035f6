"""Small generated images and tiny saved models shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_image(
    path: Path, seed: int = 0, size: tuple[int, int] = (40, 24), fmt: str | None = None
) -> Path:
    """A random RGB image (deterministic per seed) saved at ``path``."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def make_folder(root: Path, n: int, *, bad: bool = True) -> tuple[list[Path], list[Path]]:
    """n good images (mixed formats, one in a subfolder) plus corrupt/non-image files."""
    good = []
    for i in range(n):
        ext = (".jpg", ".png", ".webp")[i % 3]
        sub = root / "sub" if i % 5 == 4 else root
        good.append(make_image(sub / f"img{i:03d}{ext}", seed=i, size=(30 + i, 20 + 2 * i)))
    broken = []
    if bad:
        data = (root / "img000.jpg").read_bytes()
        (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
        (root / "notes.png").write_text("this is not a png")
        (root / "empty.webp").write_bytes(b"")
        broken = [root / "truncated.jpg", root / "notes.png", root / "empty.webp"]
    return good, broken
