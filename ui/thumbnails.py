"""Display copies: the only image files the app ever serves.

Originals stay where the user keeps them, untouched and never served; they are
decoded by :func:`common.images.decode` (the studio's one decoder and bomb limit). For each
image the app writes a resized JPEG copy (``display``, long side 1024 px) and a
thumbnail (``thumb``, 160 px) into ``ctx.cache_dir/display``, named by content uid
and size, once; later requests reuse the file. Writes go to a temporary name and
are renamed into place, so a browser never reads half a file.

Example:
    >>> cache = DisplayCache(Path("studio_data/cache"))          # doctest: +SKIP
    >>> cache.url(image_row, "display")                          # doctest: +SKIP
    'gradio_api/file=/abs/studio_data/cache/display/3f2a..._1024.jpg'
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from common.images import ImageReadError, decode, flatten

SIZES = {"display": 1024, "thumb": 160}
JPEG_QUALITY = {"display": 90, "thumb": 80}
BACKGROUND = (128, 128, 128)  # transparent pixels are shown on neutral grey
FILE_ROUTE = "gradio_api/file="


class DisplayError(Exception):
    """An original that can no longer be read (moved, deleted or corrupted since intake)."""


class DisplayCache:
    """Resized copies of originals, made once and served from ``root`` only."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = (Path(cache_dir) / "display").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Event] = {}
        self._pool: ThreadPoolExecutor | None = None

    def path_for(self, uid: str, kind: str) -> Path:
        """Where the copy of image ``uid`` lives (uids are hex, so no traversal)."""
        if kind not in SIZES:
            raise ValueError(f"kind must be one of {sorted(SIZES)}, not {kind!r}")
        if not uid.isalnum():
            raise ValueError(f"bad image uid {uid!r}")
        return self.root / f"{uid}_{SIZES[kind]}.jpg"

    def ensure(self, uid: str, original: str | Path, kind: str = "display") -> Path:
        """The copy's path, making it first if needed; raise DisplayError if unreadable.

        Two threads asking for the same copy make it once: the second waits.
        """
        target = self.path_for(uid, kind)
        if target.exists():
            return target
        key = target.name
        with self._lock:
            event = self._busy.get(key)
            owner = event is None
            if owner:
                event = self._busy[key] = threading.Event()
        if not owner:
            event.wait(30)
            if target.exists():
                return target
        try:
            _write_copy(Path(original), target, SIZES[kind], JPEG_QUALITY[kind])
        finally:
            if owner:
                with self._lock:
                    self._busy.pop(key, None)
                event.set()
        return target

    def url(self, uid: str, original: str | Path, kind: str = "display") -> str:
        """A URL (relative to the app root) of the copy, made on demand."""
        return file_url(self.ensure(uid, original, kind))

    def warm(
        self, images: Iterable[tuple[str, str]], kinds: tuple[str, ...] = ("display", "thumb")
    ) -> None:
        """Make missing copies in one background thread (a new project's first minutes).

        Errors are ignored here: the pair view reports an unreadable image when shown.
        """
        todo = [
            (uid, path, k)
            for uid, path in images
            for k in kinds
            if not self.path_for(uid, k).exists()
        ]
        if not todo:
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="display-cache")
        self._pool.submit(self._warm, todo)

    def _warm(self, todo: list[tuple[str, str, str]]) -> None:
        for uid, path, kind in todo:
            try:
                self.ensure(uid, path, kind)
            except DisplayError:
                continue


def file_url(path: Path) -> str:
    """Gradio's file route for a served path (relative: works behind a Space's proxy).

    The path is given relative to the server's working folder when the data folder
    is below it (the default ``studio_data``), so URLs do not show where the server
    keeps its data; Gradio resolves it back against the same folder.
    """
    try:
        shown = Path(path).relative_to(Path.cwd())
    except ValueError:
        shown = Path(path)
    return FILE_ROUTE + quote(str(shown), safe="/")


def _write_copy(original: Path, target: Path, size: int, quality: int) -> None:
    try:
        img, _ = decode(original, original.name, draft_size=size)
    except ImageReadError as exc:
        if exc.reason == "file not found":
            raise DisplayError(f"{original.name}: the file is gone (moved or deleted)") from exc
        raise DisplayError(f"{original.name}: corrupt or unreadable image ({exc.reason})") from exc
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    img = flatten(img, BACKGROUND)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        img.save(tmp, "JPEG", quality=quality, optimize=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
