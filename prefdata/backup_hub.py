"""The live backup's Hub side: a CommitScheduler pushing the backup log, and app start-up.

:class:`Backup` owns a :class:`prefdata.backup.BackupLog` and a ``CommitScheduler``
subclass that writes the log's new records (under the scheduler's lock) right
before each push. A failed push or a failed start is kept for the app to show and
retried; the SQLite log is never touched. ``restore_if_empty`` and ``start_backup``
are what ``app.main`` calls, driven by ``STUDIO_BACKUP_REPO`` and ``HF_TOKEN``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from prefdata.backup import BackupLog, restore_from_folders
from ranker.store import Store

log = logging.getLogger(__name__)

REPO_ENV, MINUTES_ENV = "STUDIO_BACKUP_REPO", "STUDIO_BACKUP_MINUTES"
DEFAULT_MINUTES = 5.0
MANIFEST = "backup_uploaded.json"  # beside the folder: files already on the Hub


# --- the scheduler -------------------------------------------------------------------------
def _scheduler_class():
    """A CommitScheduler that syncs the log (under its lock) before each push, and reports."""
    from huggingface_hub import CommitScheduler

    class LogScheduler(CommitScheduler):
        def __init__(self, *, backup: Backup, **kwargs) -> None:
            self.backup = backup  # set first: the base class starts pushing at once
            super().__init__(**kwargs)

        def push_to_hub(self):
            with self.lock:
                self.backup.log.sync()
                self.backup.load_manifest(self)
            try:
                info = super().push_to_hub()
            except Exception as exc:  # shown in the app; the next scheduled push retries
                self.backup.failed(exc)
                raise
            self.backup.pushed(self)
            return info

    return LogScheduler


class Backup:
    """The app's live backup: a :class:`BackupLog` pushed by a CommitScheduler.

    Creating the scheduler needs the Hub (it creates the repo); if that fails the
    error is kept for the app and creation is retried every ``every`` minutes.
    ``api`` stands in for ``HfApi`` in tests.
    """

    def __init__(
        self,
        store: Store,
        folder: Path,
        repo_id: str,
        token: str | None,
        every: float = DEFAULT_MINUTES,
        known: list[Path] | None = None,
        api=None,
    ) -> None:
        self.log = BackupLog(store, folder, known)
        self.repo_id, self.token, self.every, self.api = repo_id, token, every, api
        self.scheduler = None
        self.last_push: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self._stopped = threading.Event()
        self._manifest_loaded = False
        if not self.token and api is None:
            self.last_error = "no HF_TOKEN secret: backups to the Hub are off"
            return
        if not self._start():
            threading.Thread(target=self._retry_start, daemon=True).start()

    def _start(self) -> bool:
        try:
            self.scheduler = _scheduler_class()(
                backup=self,
                repo_id=self.repo_id,
                repo_type="dataset",
                folder_path=self.log.folder,
                every=self.every,
                private=True,
                token=self.token,
                hf_api=self.api,
            )
        except Exception as exc:  # no network, bad token, bad repo id: show it, retry
            self.failed(exc)
            return False
        return True

    def _retry_start(self) -> None:
        while not self._stopped.wait(self.every * 60):
            if self._start():
                return

    def failed(self, exc: Exception) -> None:
        from prefdata.hub import hub_error

        self.failures += 1
        self.last_error = str(hub_error(exc, self.repo_id, "back up to"))
        log.warning("backup push failed: %s", self.last_error)

    def pushed(self, scheduler) -> None:
        self.last_push, self.last_error = time.time(), None
        uploaded = {
            str(p.relative_to(self.log.folder)): m for p, m in scheduler.last_uploaded.items()
        }
        self._manifest_path().write_text(json.dumps(uploaded))

    def load_manifest(self, scheduler) -> None:
        """Once: mark files an earlier process already uploaded, so they are not sent again."""
        if self._manifest_loaded:
            return
        self._manifest_loaded = True
        try:
            uploaded = json.loads(self._manifest_path().read_text())
        except (OSError, json.JSONDecodeError):
            return
        for rel, mtime in uploaded.items():
            path = (self.log.folder / rel).resolve()
            if path.is_file() and path.stat().st_mtime == mtime:
                scheduler.last_uploaded.setdefault(path, mtime)

    def _manifest_path(self) -> Path:
        return self.log.folder.parent / MANIFEST

    def push_now(self):
        """Push at once (the app's "Back up now"); returns the Future, or None if not started."""
        can_start = bool(self.token) or self.api is not None
        if self.scheduler is None and not (can_start and self._start()):
            return None
        return self.scheduler.trigger()

    def status(self) -> str:
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.last_push))
            if self.last_push
            else "not yet"
        )
        text = f"Backup to `{self.repo_id}` every {self.every:g} min; last push: {when}."
        if self.last_error:
            text += f"\n\n**Backup failing** ({self.failures} failures; retried): {self.last_error}"
        if self.log.missing_files:
            text += (
                f"\n\n{len(self.log.missing_files)} image files could not be copied "
                f"(e.g. {self.log.missing_files[0]})."
            )
        return text

    def stop(self) -> None:
        self._stopped.set()
        if self.scheduler is not None:
            self.scheduler.stop()


# --- app start-up ----------------------------------------------------------------------------
_BACKUPS: dict[str, Backup] = {}
_RESTORES: dict[str, str] = {}


def backup_folder(ctx) -> Path:
    return Path(ctx.data_dir) / "backup"


def restore_folder(ctx) -> Path:
    return Path(ctx.data_dir) / "backup_restore"


def restore_if_empty(ctx, repo_id: str | None = None, token: str | None = None):
    """On start-up with no projects, bring them back from the backup repo.

    Call before anything creates a project (the demo). Returns the RestoreReport,
    or None when no repo is configured, projects exist, or the download failed
    (the reason is kept for the app and the log). Never raises: the app starts anyway.
    """
    from prefdata.hub import HubError, download_dataset

    repo_id = repo_id or os.environ.get(REPO_ENV, "").strip()
    key = str(ctx.data_dir)
    if not repo_id or ctx.studio.list_projects():
        return None
    try:
        folder = download_dataset(
            repo_id, restore_folder(ctx), token=token or os.environ.get("HF_TOKEN"), everything=True
        )
        report = restore_from_folders(ctx.studio, [folder])
    except HubError as exc:
        if exc.kind == "not_found":
            _RESTORES[key] = f"backup repo {repo_id} does not exist yet: nothing to restore"
        else:
            _RESTORES[key] = f"restore from {repo_id} failed: {exc}"
            log.warning(_RESTORES[key])
        return None
    except Exception as exc:  # a damaged backup must not stop the app
        _RESTORES[key] = f"restore from {repo_id} failed: {type(exc).__name__}: {exc}"
        log.exception("restore failed")
        return None
    _RESTORES[key] = report.summary()
    log.info("backup restore: %s", _RESTORES[key])
    return report


def start_backup(ctx, repo_id: str | None = None, token: str | None = None, api=None):
    """Start the live backup if ``STUDIO_BACKUP_REPO`` (or ``repo_id``) is set; else None."""
    repo_id = repo_id or os.environ.get(REPO_ENV, "").strip()
    if not repo_id:
        return None
    key = str(ctx.data_dir)
    if key in _BACKUPS:
        return _BACKUPS[key]
    every = float(os.environ.get(MINUTES_ENV) or DEFAULT_MINUTES)
    known = [restore_folder(ctx)] if restore_folder(ctx).is_dir() else []
    backup = Backup(
        ctx.studio.store,
        backup_folder(ctx),
        repo_id,
        token or os.environ.get("HF_TOKEN"),
        every,
        known,
        api,
    )
    _BACKUPS[key] = backup
    return backup


def backup_status(ctx) -> str:
    """What the app shows about backup and restore."""
    key = str(ctx.data_dir)
    parts = []
    if key in _RESTORES:
        parts.append(f"Restore: {_RESTORES[key]}")
    if key in _BACKUPS:
        parts.append(_BACKUPS[key].status())
    return "\n\n".join(parts) or (
        f"No live backup: set {REPO_ENV} (a dataset repo id) and the HF_TOKEN secret to push "
        f"the vote log to the Hub every few minutes and restore it after a restart."
    )


def current_backup(ctx) -> Backup | None:
    return _BACKUPS.get(str(ctx.data_dir))
