"""Turning uploads (image files and zips) into scoring items, with limits.

A zip is read member by member into ``(name, bytes)`` items, never extracted, so a
crafted archive cannot write outside a folder ("zip slip"); members that are folders,
hidden files or macOS metadata are left out, and total size and count are capped so
an upload cannot exhaust memory. Everything else that was uploaded is kept as an item
under its file name: a non-image file is then reported by the scorer, not dropped.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from model.scoring import Item

MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_BYTES = 2 * 1024**3


class UploadError(ValueError):
    """An upload that cannot be used (bad zip, over the limits); the message says why."""


def _skip_member(info: zipfile.ZipInfo) -> bool:
    parts = Path(info.filename).parts
    return info.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in parts)


def zip_items(
    path: str | Path, *, max_members: int = MAX_ZIP_MEMBERS, max_bytes: int = MAX_ZIP_BYTES
) -> list[Item]:
    """``(zipname/member, bytes)`` for every file in a zip, in archive order."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not _skip_member(i)]
            if len(members) > max_members:
                raise UploadError(
                    f"{path.name} has {len(members)} files; at most {max_members} can be scored here"
                )
            total = sum(i.file_size for i in members)
            if total > max_bytes:
                raise UploadError(
                    f"{path.name} unpacks to {total / 2**20:.0f} MiB; the limit here is {max_bytes / 2**20:.0f} MiB"
                )
            return [(f"{path.name}/{i.filename}", zf.read(i)) for i in members]
    except zipfile.BadZipFile as exc:
        raise UploadError(f"{path.name} is not a readable zip file ({exc})") from None


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
