"""Turning uploads (image files and zips) into scoring items, with limits.

A zip is read member by member into ``(name, bytes)`` items, never extracted, so a
crafted archive cannot write outside a folder ("zip slip"); members that are folders,
hidden files or macOS metadata are left out, and total size and count are capped so
an upload cannot exhaust memory. Everything else that was uploaded is kept as an item
under its file name: a non-image file is then reported by the scorer, not dropped.
"""

from __future__ import annotations

from pathlib import Path

from common.archive import ArchiveError, ZipLimits, read_members
from model.scoring import Item

MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_BYTES = 2 * 1024**3


class UploadError(ValueError):
    """An upload that cannot be used (bad zip, over the limits); the message says why."""


def zip_items(
    path: str | Path, *, max_members: int = MAX_ZIP_MEMBERS, max_bytes: int = MAX_ZIP_BYTES
) -> list[Item]:
    """``(zipname/member, bytes)`` for every file in a zip, in archive order."""
    path = Path(path)
    env = ZipLimits.from_env()
    limits = ZipLimits(
        min(max_bytes, env.max_bytes), min(max_members, env.max_files), env.max_ratio
    )
    try:
        return [(f"{path.name}/{name}", data) for name, data in read_members(path, limits)]
    except ArchiveError as exc:
        raise UploadError(str(exc)) from None


def upload_items(paths: list[str | Path]) -> list[Item]:
    """Items for uploaded files: zips are opened, other files keep their own name."""
    items: list[Item] = []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() == ".zip":
            items.extend(zip_items(p))
        else:
            items.append((p.name, str(p)))
    return items
