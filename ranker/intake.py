"""Image intake: folders, file lists and zips, every file validated by decoding it.

Each file is decoded in full by :func:`common.images.decode` (so truncated files are
caught), under its one decompression-bomb limit, with EXIF orientation applied to the
reported size.
Unreadable files come back in :attr:`IntakeReport.rejected` with their reason;
nothing is dropped silently. Ids are content hashes, so a moved folder keeps its
history and duplicates are found whatever their names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common.archive import ArchiveError
from common.archive import extract_zip as archive_extract
from common.images import ImageReadError, decode
from ranker.errors import StudioError

CONTEXT_FILES = ("context.txt", "context.json")
MAX_ZIP_BYTES = 4 * 1024**3
UID_CHARS = 16


@dataclass(frozen=True)
class ImageInfo:
    uid: str
    path: str
    name: str
    width: int
    height: int
    format: str
    bytes: int
    context: str | None = None


@dataclass
class IntakeReport:
    """What an intake found: accepted images, rejected files, duplicates."""

    accepted: list[ImageInfo] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, same as)

    def summary(self) -> str:
        parts = [f"{len(self.accepted)} images added"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicates skipped")
        if self.rejected:
            parts.append(f"{len(self.rejected)} files rejected")
        lines = [", ".join(parts)]
        lines += [f"  rejected {name}: {reason}" for name, reason in self.rejected]
        lines += [f"  duplicate {name} (same as {other})" for name, other in self.duplicates]
        return "\n".join(lines)


def content_uid(data: bytes) -> str:
    """The image id: a prefix of the SHA-256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:UID_CHARS]


def inspect_file(path: Path, context: str | None = None) -> ImageInfo:
    """Read and validate one file; raise ImageReadError naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    img, fmt = decode(data, str(path))
    return ImageInfo(
        uid=content_uid(data),
        path=str(path.resolve()),
        name=path.name,
        width=img.width,
        height=img.height,
        format=fmt,
        bytes=len(data),
        context=context,
    )


def folder_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Every candidate file in a folder (sorted), leaving out hidden and context files."""
    if not folder.is_dir():
        raise StudioError(f"{folder} is not a folder")
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(
        p
        for p in pattern
        if p.is_file()
        and p.name not in CONTEXT_FILES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_context(folder: Path) -> dict[str, str]:
    """Per-file context from ``context.json`` (with a ``default`` key) or ``context.txt``.

    The text is stored as given; it is sanitised when shown, never executed.
    """
    ctx: dict[str, str] = {}
    txt = folder / "context.txt"
    if txt.is_file():
        ctx["default"] = txt.read_text(encoding="utf-8", errors="replace")
    js = folder / "context.json"
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise StudioError(f"{js} is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise StudioError(f"{js} must hold an object of file name -> context")
        ctx.update({str(k): str(v) for k, v in data.items()})
    return ctx


def intake_files(paths: Iterable[Path | str], known: dict[str, str] | None = None) -> IntakeReport:
    """Validate files; ``known`` maps uids already in the project to their paths."""
    report = IntakeReport()
    known = known or {}
    seen: dict[str, str] = {}
    contexts: dict[Path, dict[str, str]] = {}
    for raw in paths:
        path = Path(raw)
        if path.parent not in contexts:
            try:
                contexts[path.parent] = read_context(path.parent)
            except StudioError as exc:
                report.rejected.append((str(path.parent / "context.json"), str(exc)))
                contexts[path.parent] = {}
        ctx = contexts[path.parent]
        try:
            info = inspect_file(path, ctx.get(path.name, ctx.get("default")))
        except ImageReadError as exc:
            report.rejected.append((exc.name, exc.reason))
            continue
        # Same bytes twice in this intake, or a copy of an image the project still has
        # at another existing path: a duplicate. A known image whose old path is gone
        # was moved: accepting it updates the path and keeps its votes.
        earlier = seen.get(info.uid) or known.get(info.uid)
        if earlier and earlier != info.path and (info.uid in seen or Path(earlier).exists()):
            report.duplicates.append((info.path, earlier))
            continue
        seen[info.uid] = info.path
        report.accepted.append(info)
    return report


def extract_zip(archive: Path, dest: Path) -> Path:
    """Unpack a zip safely (no paths outside ``dest``, limits from :mod:`common.archive`)."""
    try:
        return archive_extract(archive, dest)
    except ArchiveError as exc:
        raise StudioError(str(exc)) from None
