"""Live backup of the vote log to a Hub dataset repo, and restore on a fresh Space.

A Space's disk is wiped on restart. With a backup repo configured, each process
appends what the SQLite log gained since its last look (projects, images, votes,
undos, exclusions, pre-rankings) as JSON lines to ``log/<process uuid>.jsonl`` and
copies each image's bytes once to ``images/<uid><ext>``, all inside the folder a
``huggingface_hub.CommitScheduler`` pushes every few minutes (see
:mod:`prefdata.backup_hub`). File names never collide between processes and nothing
is ever rewritten, so pushes are cheap and concurrent writers are safe. The SQLite log is only read: a failed push changes
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

from prefdata.imported import FORMAT_SUFFIX, ImportedImage
from prefdata.project_import import create_project_from_log
from ranker.schema import vote_record
from ranker.store import Store, VoteRow, vote_from_record

log = logging.getLogger(__name__)

LOG_DIR, IMAGES_DIR = "log", "images"


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
        # Votes first: an image is stored before any vote names it, so every image a
        # vote read here names is in the image list read next.
        votes = self.store.votes(row.id, include_undone=True)
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
                record = {"op": "vote", "project": name, "key": key, **vote_record(v)}
                out.append({**record, "source": v.source})
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
        votes = [vote_from_record(v, "backup") for v in p.votes]
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
