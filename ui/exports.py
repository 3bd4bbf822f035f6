"""Where downloads are written: one unguessable folder per export, removed after a while.

The exports folder is served (so the page can offer the file), which is why every
export gets a fresh folder named by :func:`secrets.token_urlsafe`: only the caller
who was handed the link can fetch it, and folders older than ``EXPORT_TTL_S``
(``STUDIO_EXPORT_TTL`` seconds, default one hour) are deleted on the next export.
File names inside are relative (``<project>-<format>.zip``), never server paths.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from ui.context import StudioContext

EXPORT_TTL_S = float(os.environ.get("STUDIO_EXPORT_TTL", 3600))
TOKEN_BYTES = 24  # 192 random bits per folder name


def new_export_dir(ctx: StudioContext, now: float | None = None) -> Path:
    """A fresh, unguessable folder under ``ctx.exports_dir`` (old ones pruned first)."""
    prune_exports(ctx, now)
    path = ctx.exports_dir / secrets.token_urlsafe(TOKEN_BYTES)
    path.mkdir(parents=True)
    return path


def prune_exports(ctx: StudioContext, now: float | None = None) -> int:
    """Delete export folders older than ``EXPORT_TTL_S``; returns how many went."""
    cutoff = (time.time() if now is None else now) - EXPORT_TTL_S
    gone = 0
    for entry in ctx.exports_dir.iterdir():
        try:
            if entry.lstat().st_mtime < cutoff:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                gone += 1
        except OSError:
            continue
    return gone
