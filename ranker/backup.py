"""Live backup of the vote log to a Hub dataset repo, and restore on a fresh Space.

A Space's disk is wiped on restart. With a backup repo configured, each process
appends what the SQLite log gained since its last look (projects, images, votes,
undos, exclusions) as JSON lines to ``log/<process uuid>.jsonl`` and copies each
image's bytes once to ``images/<uid><ext>``, all inside the folder a
``huggingface_hub.CommitScheduler`` pushes every few minutes. File names never
collide between processes, and nothing is ever rewritten, so pushes are cheap and
concurrent writers are safe. The SQLite log is only read: a failed push changes
nothing locally, is shown in the app, and the scheduler retries it with the next push.

Restoring reads every log file (oldest process first), folds the records per
project, and writes the projects into an empty store: the same images, the same
votes in the same order (undone ones marked), exclusions at the point they
happened, and pre-rankings, so the ratings replay identically. Votes are matched
across processes by a key (hash of the vote plus its occurrence number), so a
restored process never re-uploads what the backup already holds.

Example:
    >>> log = BackupLog(studio.store, Path("backup"))       # doctest: +SKIP
    >>> log.sync()                                          # doctest: +SKIP
    12
    >>> restore_from_folders(Studio("fresh.db"), [Path("backup")])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ranker.dataset_import import FORMAT_SUFFIX, ImportedImage, create_project_from_log
from ranker.store import Store, VoteRow

log = logging.getLogger(__name__)

LOG_DIR, IMAGES_DIR = "log", "images"
REPO_ENV, MINUTES_ENV = "STUDIO_BACKUP_REPO", "STUDIO_BACKUP_MINUTES"
DEFAULT_MINUTES = 5.0
MANIFEST = "backup_uploaded.json"  # beside the folder: files already on the Hub


def vote_key(v: VoteRow, occurrence: int) -> str:
    """A vote's identity in every process: its content plus how often it occurred before."""
    text = json.dumps([v.left_uid, v.right_uid, v.outcome, v.labeler, repr(v.created_at)])
    return f"{hashlib.sha1(text.encode()).hexdigest()[:16]}-{occurrence}"


# --- folding records -------------------------------------------------------------------------
@dataclass
class ProjectBackup:
    """One project as the backup records describe it."""

    instruction: str | None = None
    settings: dict = field(default_factory=dict)
    images: dict[str, dict] = field(default_factory=dict)  # uid -> image record
    exclusions: dict[str, dict] = field(default_factory=dict)  # uid -> latest exclude record
    priors: dict[str, tuple] = field(default_factory=dict)  # uid -> (prior_mu, prior_sigma)
    votes: list[dict] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    undone: set[str] = field(default_factory=set)


def read_records(folders: list[Path]) -> list[dict]:
    """Every record of every log file, files ordered by their first record's time."""
    files = []
    for folder in folders:
        for path in sorted((folder / LOG_DIR).glob("*.jsonl")):
            records = []
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut by a crash: the rest is fine
                        log.warning("skipping a damaged line in %s", path)
            if records:
                files.append((records[0].get("t", 0.0), path.name, records))
    files.sort(key=lambda f: (f[0], f[1]))
    return [r for _, _, records in files for r in records]


def fold(
    records: list[dict], state: dict[str, ProjectBackup] | None = None
) -> dict[str, ProjectBackup]:
    """Replay records into per-project state (continuing ``state`` if given).

    Later records win; a vote key is kept once, at its first appearance.
    """
    projects = {} if state is None else state
    for r in records:
        op, name = r.get("op"), r.get("project")
        if op == "delete_project":
            projects.pop(name, None)
            continue
        p = projects.setdefault(name, ProjectBackup())
        if op == "project":
            p.instruction, p.settings = r.get("instruction"), r.get("settings") or {}
        elif op == "image" and r["uid"] not in p.images:
            p.images[r["uid"]] = r
            p.priors[r["uid"]] = (r.get("prior_mu"), r.get("prior_sigma"))
        elif op == "prior":
            p.priors[r["uid"]] = (r.get("prior_mu"), r.get("prior_sigma"))
        elif op == "exclude":
            p.exclusions[r["uid"]] = r
        elif op == "vote" and r["key"] not in p.keys:
            p.keys.add(r["key"])
            p.votes.append(r)
        elif op == "undo":
            p.undone.add(r["key"])
    return projects


def image_files(folders: list[Path]) -> dict[str, Path]:
    """uid -> backed-up image file, across the folders."""
    found = {}
    for folder in folders:
        for path in (folder / IMAGES_DIR).glob("*"):
            found.setdefault(path.stem, path)
    return found


# --- writing -------------------------------------------------------------------------------
class BackupLog:
    """Appends what the store has and the backup lacks; never writes to the store.

    ``folder`` is the scheduler's folder (this process writes there); ``known`` are
    read-only folders already on the Hub (a restored snapshot), consulted so their
    content is not written twice.
    """

    def __init__(self, store: Store, folder: Path, known: list[Path] | None = None) -> None:
        self.store = store
        self.folder = Path(folder)
        self.known = [Path(k) for k in known or []]
        self.path = self.folder / LOG_DIR / f"{uuid.uuid4().hex}.jsonl"
        self._lock = threading.Lock()
        folders = [*self.known, self.folder]
        self.state = fold(read_records(folders))
        self.files = image_files(folders)
        self._ids: dict[str, tuple[int, dict[int, str], Counter]] = {}
        self.missing_files: list[str] = []

    def sync(self) -> int:
        """Write the new records (and image files); returns how many records were written."""
        with self._lock:
            records = []
            live = {row.name: row for row in self.store.list_projects()}
            # Only deletions this process saw happen: a project that failed to restore
            # must not be deleted from the backup.
            for name in [n for n in self._ids if n not in live]:
                records.append({"op": "delete_project", "project": name})
                del self._ids[name]
            for row in live.values():
                records += self._project_records(row)
            if records:
                self._append(records)
                fold(records, self.state)
            return len(records)

    def _project_records(self, row) -> list[dict]:
        name, out = row.name, []
        seen = self._ids.get(name)
        if seen is not None and seen[0] != row.id:  # deleted and made again since last look
            out.append({"op": "delete_project", "project": name})
            self.state.pop(name, None)
            seen = None
        if seen is None:
            seen = self._ids[name] = (row.id, {}, Counter())
        p = self.state.get(name, ProjectBackup())
        if (p.instruction, p.settings) != (row.instruction, row.settings) or name not in self.state:
            out.append(
                {
                    "op": "project",
                    "project": name,
                    "instruction": row.instruction,
                    "settings": row.settings,
                }
            )
        votes = self.store.votes(row.id, include_undone=True)  # before images: see sync()
        position = {v.id: k for k, v in enumerate(votes)}
        for img in self.store.images(row.id):
            out += self._image_records(name, img, p, position)
        _, keys, occurrences = seen
        for v in votes:
            if v.id not in keys:
                content = vote_key(v, 0)
                keys[v.id] = vote_key(v, occurrences[content])
                occurrences[content] += 1
            key = keys[v.id]
            if key not in p.keys:
                out.append(
                    {
                        "op": "vote",
                        "project": name,
                        "key": key,
                        "left": v.left_uid,
                        "right": v.right_uid,
                        "outcome": v.outcome,
                        "labeler": v.labeler,
                        "created_at": v.created_at,
                        "response_ms": v.response_ms,
                        "source": v.source,
                    }
                )
            if v.undone and key not in p.undone:
                out.append({"op": "undo", "project": name, "key": key})
        return out

    def _image_records(self, name: str, img, p: ProjectBackup, position: dict) -> list[dict]:
        out = []
        if img.uid not in p.images:
            out.append(
                {
                    "op": "image",
                    "project": name,
                    "uid": img.uid,
                    "name": img.name,
                    "path": img.path,
                    "file": self._copy_image(img),
                    "width": img.width,
                    "height": img.height,
                    "format": img.format,
                    "bytes": img.bytes,
                    "context": img.context,
                    "position": img.position,
                    "prior_mu": img.prior_mu,
                    "prior_sigma": img.prior_sigma,
                }
            )
        last = p.exclusions.get(img.uid, {"excluded": False, "reason": None})
        if (last["excluded"], last["reason"]) != (img.excluded, img.exclusion_reason):
            after = None
            if img.excluded and img.excluded_after_vote is not None:
                after = sum(1 for vid in position if vid <= img.excluded_after_vote)
            out.append(
                {
                    "op": "exclude",
                    "project": name,
                    "uid": img.uid,
                    "excluded": img.excluded,
                    "reason": img.exclusion_reason,
                    "after": after,
                }
            )
        prior = (img.prior_mu, img.prior_sigma)
        if img.uid in p.images and p.priors.get(img.uid) != prior:
            out.append(
                {
                    "op": "prior",
                    "project": name,
                    "uid": img.uid,
                    "prior_mu": img.prior_mu,
                    "prior_sigma": img.prior_sigma,
                }
            )
        return out

    def _copy_image(self, img) -> str | None:
        """Copy the image's bytes into the folder once per uid; None if the file is gone."""
        if img.uid not in self.files:
            suffix = FORMAT_SUFFIX.get(img.format) or Path(img.name).suffix.lower() or ".img"
            target = self.folder / IMAGES_DIR / f"{img.uid}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp = target.with_name(f".{target.name}.part")
                shutil.copyfile(img.path, tmp)
                tmp.replace(target)
            except OSError:
                self.missing_files.append(img.path)
                return None
            self.files[img.uid] = target
        return f"{IMAGES_DIR}/{self.files[img.uid].name}"

    def _append(self, records: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        with self.path.open("a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps({**r, "t": now}, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# --- restoring -----------------------------------------------------------------------------
@dataclass
class RestoreReport:
    projects: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    votes: int = 0
    images: int = 0
    missing_images: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"restored {len(self.projects)} projects ({self.votes} votes, {self.images} images)"
        if self.skipped:
            text += f"; kept the local {', '.join(self.skipped)}"
        if self.missing_images:
            text += f"; {len(self.missing_images)} images had no backed-up file"
        return text


def restore_from_folders(studio, folders: list[Path]) -> RestoreReport:
    """Write every backed-up project that the studio lacks; existing ones are left alone."""
    folders = [Path(f) for f in folders]
    files = image_files(folders)
    existing = {p.name for p in studio.list_projects()}
    report = RestoreReport()
    for name, p in fold(read_records(folders)).items():
        if name in existing:
            report.skipped.append(name)
            continue
        images = []
        for rec in sorted(p.images.values(), key=lambda r: r.get("position", 0)):
            path = files.get(rec["uid"])
            if path is None:
                report.missing_images.append(rec.get("name") or rec["uid"])
            excl = p.exclusions.get(rec["uid"], {})
            images.append(
                ImportedImage(
                    uid=rec["uid"],
                    path=str(path.resolve()) if path else rec["path"],
                    name=rec["name"],
                    width=rec["width"],
                    height=rec["height"],
                    format=rec["format"],
                    bytes=rec["bytes"],
                    context=rec.get("context"),
                    excluded=bool(excl.get("excluded")),
                    exclusion_reason=excl.get("reason"),
                    prior_mu=p.priors.get(rec["uid"], (None, None))[0],
                    prior_sigma=p.priors.get(rec["uid"], (None, None))[1],
                )
            )
        votes = [
            (
                None,
                v["left"],
                v["right"],
                v["outcome"],
                v["labeler"],
                v["created_at"],
                v.get("response_ms"),
                v.get("source") or "backup",
            )
            for v in p.votes
        ]
        after = {
            uid: e["after"]
            for uid, e in p.exclusions.items()
            if e.get("excluded") and e.get("after") is not None
        }
        undone = {k for k, v in enumerate(p.votes) if v["key"] in p.undone}
        create_project_from_log(
            studio.store,
            name,
            p.instruction,
            p.settings,
            images,
            votes,
            excluded_after=after,
            undone=undone,
        )
        report.projects.append(name)
        report.votes += len(votes) - len(undone)
        report.images += len(images)
    return report


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
        from ranker.hub import hub_error

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
    from ranker.hub import HubError, download_dataset

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
