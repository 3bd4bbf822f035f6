"""Small generated projects for the Ranking tab tests (no files are committed)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ui.context import StudioContext


def make_images(folder: Path, n: int, size: tuple[int, int] = (40, 30)) -> list[Path]:
    """``n`` distinct small PNGs named img000.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = Image.new("RGB", size, ((37 * i) % 256, (91 * i) % 256, (13 * i) % 256))
        img.putpixel((i % size[0], 0), (255 - i % 256, 1, 2))
        path = folder / f"img{i:03d}.png"
        img.save(path)
        paths.append(path)
    return paths


def make_context(
    tmp_path: Path,
    admin_token: str | None = None,
    roots: list[Path] | None = None,
    on_space: bool = False,
) -> StudioContext:
    return StudioContext(
        data_dir=tmp_path / "data",
        admin_token=admin_token,
        allowed_roots=roots or [],
        on_space=on_space,
        sound_enabled=False,
    )


def make_project(
    ctx: StudioContext, name: str, folder: Path, n: int = 6, context: dict | None = None, **settings
):
    """A project of ``n`` generated images in ``folder`` (with optional context.json)."""
    make_images(folder, n)
    if context is not None:
        (folder / "context.json").write_text(json.dumps(context))
    project = ctx.studio.create_project(name, **settings)
    report = project.add_folder(folder)
    assert len(report.accepted) == n, report.summary()
    return project


def corrupt(path: Path) -> None:
    """Damage an original after intake (the app must say so, not crash)."""
    path.write_bytes(path.read_bytes()[:40])
