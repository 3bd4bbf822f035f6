"""The one zip reader: limits checked from the central directory, then while streaming.

A zip says in its central directory how many members it has and how big each one
unpacks; those numbers are checked before a single byte is inflated, so a 1 MB
archive of 1 GiB of zeros is refused at once (its ratio gives it away). Members are
then read through a counter that stops at the declared size and at the total, in
case the directory lies. Paths that would land outside the destination ("zip
slip"), links and hidden entries are never written.

Limits come from the environment (``STUDIO_ZIP_MAX_BYTES``, ``STUDIO_ZIP_MAX_FILES``,
``STUDIO_ZIP_MAX_RATIO``) or are passed explicitly.

Example:
    >>> names = [info.filename for info in check_zip("photos.zip")]  # doctest: +SKIP
    >>> extract_zip("photos.zip", Path("out"))                       # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


class ArchiveError(ValueError):
    """A zip that cannot be read or breaks a limit; the message names the fault."""


@dataclass(frozen=True)
class ZipLimits:
    """How much one zip may hold once unpacked."""

    max_bytes: int = 4 << 30  # total uncompressed size
    max_files: int = 100_000  # members (folders and hidden entries not counted)
    max_ratio: float = 200.0  # uncompressed / compressed, per member and overall

    @classmethod
    def from_env(cls) -> ZipLimits:
        d = cls()
        return cls(
            max_bytes=int(float(os.environ.get("STUDIO_ZIP_MAX_BYTES", d.max_bytes))),
            max_files=int(os.environ.get("STUDIO_ZIP_MAX_FILES", d.max_files)),
            max_ratio=float(os.environ.get("STUDIO_ZIP_MAX_RATIO", d.max_ratio)),
        )


def skipped(info: zipfile.ZipInfo) -> bool:
    """Folders, macOS metadata, hidden files and symlinks are never read."""
    parts = Path(info.filename).parts
    is_link = stat.S_ISLNK(info.external_attr >> 16)
    hidden = any(p.startswith(".") and p not in (".", "..") for p in parts)
    return info.is_dir() or is_link or hidden or "__MACOSX" in parts


def check_zip(path: str | os.PathLike, limits: ZipLimits | None = None) -> list[zipfile.ZipInfo]:
    """The members worth reading, after checking every limit from the central directory."""
    limits = limits or ZipLimits.from_env()
    name = Path(path).name
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not skipped(i)]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{name} is not a readable zip file ({exc})") from None
    if len(members) > limits.max_files:
        raise ArchiveError(
            f"{name} holds {len(members):,} files; at most {limits.max_files:,} are allowed "
            "(STUDIO_ZIP_MAX_FILES)"
        )
    total = sum(i.file_size for i in members)
    if total > limits.max_bytes:
        raise ArchiveError(
            f"{name} unpacks to {total / 2**20:,.0f} MiB; the limit is "
            f"{limits.max_bytes / 2**20:,.0f} MiB (STUDIO_ZIP_MAX_BYTES)"
        )
    packed = sum(i.compress_size for i in members)
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio and info.file_size > CHUNK:
            raise ArchiveError(
                f"{name}: {info.filename} would unpack {ratio:,.0f} times its packed size "
                f"(a zip bomb?); the limit is {limits.max_ratio:g} (STUDIO_ZIP_MAX_RATIO)"
            )
    if total > CHUNK and total / max(packed, 1) > limits.max_ratio:
        raise ArchiveError(
            f"{name} would unpack {total / max(packed, 1):,.0f} times its size; "
            f"the limit is {limits.max_ratio:g} (STUDIO_ZIP_MAX_RATIO)"
        )
    return members


def iter_members(
    path: str | os.PathLike, limits: ZipLimits | None = None
) -> Iterator[tuple[zipfile.ZipInfo, Iterator[bytes]]]:
    """``(member, chunks)`` for each member, the total enforced while inflating."""
    limits = limits or ZipLimits.from_env()
    members = check_zip(path, limits)
    budget = [limits.max_bytes]
    with zipfile.ZipFile(path) as zf:
        for info in members:
            yield info, _chunks(zf, info, budget, Path(path).name)


def _chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int], name: str):
    seen = 0
    try:
        with zf.open(info) as src:
            while chunk := src.read(CHUNK):
                seen += len(chunk)
                budget[0] -= len(chunk)
                if seen > info.file_size or budget[0] < 0:
                    raise ArchiveError(f"{name}: {info.filename} unpacks larger than it says")
                yield chunk
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise ArchiveError(f"{name}: {info.filename} cannot be unpacked ({exc})") from None


def read_members(
    path: str | os.PathLike, limits: ZipLimits | None = None
) -> list[tuple[str, bytes]]:
    """``(member name, bytes)`` for every member, in archive order (nothing written).

    Members whose names climb out (``..``) or are absolute are left out: nothing is
    written, but their names would mislead whoever reads the results.
    """
    return [
        (info.filename, b"".join(chunks))
        for info, chunks in iter_members(path, limits)
        if ".." not in Path(info.filename).parts and not info.filename.startswith("/")
    ]


def extract_zip(
    path: str | os.PathLike, dest: str | os.PathLike, limits: ZipLimits | None = None
) -> Path:
    """Unpack into ``dest`` (created); returns it resolved. A refused zip leaves nothing."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    written: list[Path] = []
    try:
        for info, chunks in iter_members(path, limits):
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root) or target == root:
                raise ArchiveError(f"{Path(path).name} holds an unsafe path: {info.filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(target)
            with open(target, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return root
