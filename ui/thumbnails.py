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
    'studio-media/3f2a..._1024.jpg'

The copies are served by :func:`media_route`, by file name alone, so a URL never shows
where the server keeps its data (Gradio's own file route would need the full path).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from common.images import ImageReadError, decode, flatten

SIZES = {"display": 1024, "thumb": 160}
JPEG_QUALITY = {"display": 90, "thumb": 80}
BACKGROUND = (128, 128, 128)  # transparent pixels are shown on neutral grey
MEDIA_ROUTE = "studio-media/"  # relative to the app's address: works behind a proxy
COPY_NAME = re.compile(r"[A-Za-z0-9]+_(?:" + "|".join(map(str, SIZES.values())) + r")\.jpg")
MEDIA_MAX_AGE = 86400  # a copy is named by content uid and size: it never changes


class DisplayError(Exception):
    """An original that can no longer be read (moved, deleted or corrupted since intake)."""


class DisplayCache:
    """Resized copies of originals, made once and served from ``root`` only."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = display_root(cache_dir)
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
        return MEDIA_ROUTE + self.ensure(uid, original, kind).name

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


def display_root(cache_dir: Path) -> Path:
    """The folder of display copies under ``cache_dir`` (made if missing)."""
    root = (Path(cache_dir) / "display").resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def media_route(cache_dir: Path):
    """The app route that serves display copies by name: ``GET /studio-media/<name>``.

    Only names a copy can have (``<uid>_<size>.jpg``) and only regular files directly in
    the display folder are served; anything else is a 404, the same for a missing file
    and a refused one. Passed to Gradio as a FastAPI route at launch
    (``launch(app_kwargs={"routes": [...]})``), before Gradio's own routes.
    """
    from starlette.responses import FileResponse, Response
    from starlette.routing import Route

    root = display_root(cache_dir)

    def serve(request) -> Response:
        name = request.path_params["name"]
        path = root / name
        if not COPY_NAME.fullmatch(name) or path.is_symlink() or not path.is_file():
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {"Cache-Control": f"public, max-age={MEDIA_MAX_AGE}"}
        return FileResponse(path, media_type="image/jpeg", headers=headers)

    return Route(f"/{MEDIA_ROUTE}{{name}}", serve, methods=["GET"], name="studio_media")


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
