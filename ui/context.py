"""What every tab of the app shares: where data lives, who may read which folders.

Read once from the environment by :func:`StudioContext.from_env`; tests build one
directly with a temporary ``data_dir``. Nothing here imports torch or gradio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


@dataclass
class StudioContext:
    """Settings and shared services of one running app.

    data_dir: everything the app writes (the vote database, display caches,
        uploads, training runs). One folder to back up.
    allowed_roots: local folders users may open as projects (Image Ranker's
        ``BASE_DIR``); empty means local folders are off (the default on a Space).
    on_space: running as a Hugging Face Space (``SPACE_ID`` is set).
    admin_token: owner token that unlocks settings, deletion and exports.
    """

    data_dir: Path
    allowed_roots: list[Path] = field(default_factory=list)
    on_space: bool = False
    admin_token: str | None = None
    sound_enabled: bool = True
    exclusion_reasons_file: Path | None = None
    space_id: str | None = None

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> StudioContext:
        space_id = os.environ.get("SPACE_ID")
        on_space = bool(space_id)
        root = Path(data_dir or os.environ.get("STUDIO_DATA_DIR") or "studio_data").resolve()
        base_dir = os.environ.get("BASE_DIR")
        if base_dir:
            roots = [Path(p).expanduser().resolve() for p in base_dir.split(os.pathsep) if p]
        elif on_space:
            roots = []
        else:
            roots = [Path.home().resolve()]
        reasons = os.environ.get("EXCLUSION_REASONS_FILE")
        return cls(
            data_dir=root,
            allowed_roots=roots,
            on_space=on_space,
            admin_token=os.environ.get("STUDIO_ADMIN_TOKEN") or None,
            sound_enabled=_env_flag("SOUND_ENABLED", True),
            exclusion_reasons_file=Path(reasons) if reasons else None,
            space_id=space_id,
        )

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "studio.db"

    @property
    def cache_dir(self) -> Path:
        """Resized display copies and thumbnails: the only image files the app serves."""
        path = self.data_dir / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def uploads_dir(self) -> Path:
        path = self.data_dir / "uploads"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def runs_dir(self) -> Path:
        """Training runs (checkpoints, logs, final models)."""
        path = self.data_dir / "runs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def exports_dir(self) -> Path:
        path = self.data_dir / "exports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def studio(self):  # -> ranker.service.Studio (imported lazily: keeps `import app` cheap)
        from ranker.service import Studio

        return Studio(self.db_path)

    def served_roots(self) -> list[Path]:
        """Folders Gradio may serve files from: generated copies only, never originals."""
        return [self.cache_dir, self.exports_dir]
