"""The vote log: one SQLite file (WAL, synchronous=FULL) holds every project.

The votes table is append-only; undo sets a flag and a time, nothing is deleted.
Every write commits before the call returns, so an acknowledged vote survives a
crash, power loss included. The one exception is the open pairs (``assignments``):
losing one only means the labeler is shown a new pair, so those writes commit with
``synchronous=NORMAL`` and skip the fsync (WAL keeps the file consistent, and the
next durable commit syncs them along). One :class:`Store` is safe to share between
threads (one connection behind a lock); other processes may open the same file (WAL
lets readers and a writer mix).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ranker.contracts import DEFAULT_INSTRUCTION, OUTCOMES
from ranker.errors import DuplicateVoteError, StudioError, UnknownProjectError

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    instruction TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    position INTEGER NOT NULL,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    context TEXT,
    excluded INTEGER NOT NULL DEFAULT 0,
    exclusion_reason TEXT,
    excluded_after_vote INTEGER,
    prior_mu REAL,
    prior_sigma REAL,
    added_at REAL NOT NULL,
    PRIMARY KEY (project_id, uid)
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pair_id TEXT,
    left_uid TEXT NOT NULL,
    right_uid TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('left', 'right', 'tie')),
    labeler TEXT NOT NULL,
    created_at REAL NOT NULL,
    response_ms REAL,
    undone INTEGER NOT NULL DEFAULT 0,
    undone_at REAL,
    source TEXT NOT NULL DEFAULT 'app'
);
CREATE UNIQUE INDEX IF NOT EXISTS votes_pair ON votes(project_id, pair_id)
    WHERE pair_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS votes_project ON votes(project_id, id);
CREATE TABLE IF NOT EXISTS skips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pair_id TEXT,
    left_uid TEXT NOT NULL,
    right_uid TEXT NOT NULL,
    labeler TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    labeler TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    left_uid TEXT NOT NULL,
    right_uid TEXT NOT NULL,
    issued_at REAL NOT NULL,
    PRIMARY KEY (project_id, labeler)
);
"""


@dataclass(frozen=True)
class ProjectRow:
    id: int
    name: str
    instruction: str
    settings: dict
    created_at: float


@dataclass(frozen=True)
class ImageRow:
    uid: str
    position: int
    path: str
    name: str
    width: int
    height: int
    format: str
    bytes: int
    context: str | None = None
    excluded: bool = False
    exclusion_reason: str | None = None
    excluded_after_vote: int | None = None
    prior_mu: float | None = None
    prior_sigma: float | None = None

    @classmethod
    def from_info(cls, info, position: int) -> ImageRow:
        """A new row from an intake record (``ImageInfo`` or any object with its fields)."""
        return cls(
            uid=info.uid,
            position=position,
            path=info.path,
            name=info.name,
            width=info.width,
            height=info.height,
            format=info.format,
            bytes=info.bytes,
            context=info.context,
        )


@dataclass(frozen=True)
class VoteRow:
    id: int
    pair_id: str | None
    left_uid: str
    right_uid: str
    outcome: str
    labeler: str
    created_at: float
    response_ms: float | None
    undone: bool
    source: str

    @property
    def winner_loser(self) -> tuple[str, str]:
        """(winner, loser); for a tie, (left, right)."""
        if self.outcome == "right":
            return self.right_uid, self.left_uid
        return self.left_uid, self.right_uid


@dataclass(frozen=True)
class Assignment:
    pair_id: str
    left_uid: str
    right_uid: str
    issued_at: float


NewVote = tuple[str | None, str, str, str, str, float, float | None, str]
"""(pair_id, left_uid, right_uid, outcome, labeler, created_at, response_ms, source)"""


def vote_from_record(record: dict, source: str) -> NewVote:
    """A vote as our JSON export and the backup log write it (keys left, right, outcome,
    labeler, created_at, optional response_ms and source), ready for ``add_votes``."""
    return (
        None,
        record["left"],
        record["right"],
        record["outcome"],
        record["labeler"],
        record["created_at"],
        record.get("response_ms"),
        record.get("source") or source,
    )


class Store:
    """Typed access to the SQLite vote log."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it commits or none of it does.

        ``durable=False`` commits without waiting for an fsync, for data whose loss
        in a power cut is harmless (open pairs). SQLite only lets the level change
        outside a transaction, and the connection is shared, so the switch happens
        under the lock and FULL is back before any other write can start.
        """
        with self._lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # also after a failed COMMIT
                        self._db.execute("ROLLBACK")
                    raise
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def synchronous(self) -> int:
        """The connection's current ``PRAGMA synchronous`` level (2 = FULL)."""
        return int(self._query("PRAGMA synchronous")[0][0])

    def _query(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # --- projects ---------------------------------------------------------------------
    def create_project(
        self, name: str, instruction: str | None = None, settings: dict | None = None
    ) -> ProjectRow:
        name = (name or "").strip()
        if not name:
            raise StudioError("a project needs a name")
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO projects(name, instruction, settings, created_at) VALUES (?,?,?,?)",
                    (
                        name,
                        (instruction or "").strip() or DEFAULT_INSTRUCTION,
                        json.dumps(settings or {}),
                        time.time(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise StudioError(f"a project named {name!r} already exists") from exc
        return self.get_project(name)

    def get_project(self, name: str) -> ProjectRow:
        rows = self._query("SELECT * FROM projects WHERE name = ?", (name,))
        if not rows:
            raise UnknownProjectError(name)
        return _project(rows[0])

    def list_projects(self) -> list[ProjectRow]:
        return [_project(r) for r in self._query("SELECT * FROM projects ORDER BY id")]

    def update_project(
        self, project_id: int, *, instruction: str | None = None, settings: dict | None = None
    ) -> None:
        with self.transaction() as db:
            if instruction is not None:
                db.execute(
                    "UPDATE projects SET instruction = ? WHERE id = ?",
                    (instruction.strip() or DEFAULT_INSTRUCTION, project_id),
                )
            if settings is not None:
                db.execute(
                    "UPDATE projects SET settings = ? WHERE id = ?",
                    (json.dumps(settings), project_id),
                )

    def delete_project(self, project_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM projects WHERE id = ?", (project_id,))

    # --- images -----------------------------------------------------------------------
    def images(self, project_id: int) -> list[ImageRow]:
        rows = self._query(
            "SELECT * FROM images WHERE project_id = ? ORDER BY position", (project_id,)
        )
        return [_image(r) for r in rows]

    def add_images(self, project_id: int, images: list[ImageRow]) -> None:
        """Insert new images, or update the path of known ones (a moved folder)."""
        with self.transaction() as db:
            for img in images:
                db.execute(
                    "INSERT INTO images(project_id, uid, position, path, name, width, height,"
                    " format, bytes, context, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(project_id, uid) DO UPDATE SET path = excluded.path,"
                    " name = excluded.name, context = COALESCE(excluded.context, context)",
                    (
                        project_id,
                        img.uid,
                        img.position,
                        img.path,
                        img.name,
                        img.width,
                        img.height,
                        img.format,
                        img.bytes,
                        img.context,
                        time.time(),
                    ),
                )

    def set_excluded(
        self, project_id: int, uid: str, excluded: bool, reason: str | None = None
    ) -> None:
        with self.transaction() as db:
            last = db.execute(
                "SELECT COALESCE(MAX(id), 0) FROM votes WHERE project_id = ?", (project_id,)
            ).fetchone()[0]
            db.execute(
                "UPDATE images SET excluded = ?, exclusion_reason = ?, excluded_after_vote = ?"
                " WHERE project_id = ? AND uid = ?",
                (
                    int(excluded),
                    reason if excluded else None,
                    last if excluded else None,
                    project_id,
                    uid,
                ),
            )

    def set_priors(self, project_id: int, priors: dict[str, tuple[float, float] | None]) -> None:
        """Per-image starting ratings (a model pre-ranking); None resets to the prior."""
        with self.transaction() as db:
            for uid, prior in priors.items():
                mu, sigma = prior if prior is not None else (None, None)
                db.execute(
                    "UPDATE images SET prior_mu = ?, prior_sigma = ? WHERE project_id = ? AND uid = ?",
                    (mu, sigma, project_id, uid),
                )

    # --- votes ------------------------------------------------------------------------
    def add_votes(self, project_id: int, votes: Iterable[NewVote]) -> list[int]:
        """Append votes in order in one transaction; returns their ids.

        A second answer to the same ``pair_id`` raises :class:`DuplicateVoteError`
        and nothing of the batch is written.
        """
        ids = []
        try:
            with self.transaction() as db:
                for pair_id, left, right, outcome, labeler, created, response_ms, source in votes:
                    if outcome not in OUTCOMES:
                        raise StudioError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
                    cur = db.execute(
                        "INSERT INTO votes(project_id, pair_id, left_uid, right_uid, outcome,"
                        " labeler, created_at, response_ms, source) VALUES (?,?,?,?,?,?,?,?,?)",
                        (
                            project_id,
                            pair_id,
                            left,
                            right,
                            outcome,
                            labeler,
                            created,
                            response_ms,
                            source,
                        ),
                    )
                    ids.append(cur.lastrowid)
                    if pair_id is not None:
                        db.execute(
                            "DELETE FROM assignments WHERE project_id = ? AND pair_id = ?",
                            (project_id, pair_id),
                        )
        except sqlite3.IntegrityError as exc:
            raise DuplicateVoteError("this pair was already answered; it counts once") from exc
        return ids

    def votes(self, project_id: int, include_undone: bool = False) -> list[VoteRow]:
        where = "" if include_undone else " AND undone = 0"
        rows = self._query(
            f"SELECT * FROM votes WHERE project_id = ?{where} ORDER BY id", (project_id,)
        )
        return [_vote(r) for r in rows]

    def vote_count(self, project_id: int) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM votes WHERE project_id = ? AND undone = 0", (project_id,)
        )
        return int(rows[0][0])

    def has_pair(self, project_id: int, pair_id: str) -> bool:
        rows = self._query(
            "SELECT 1 FROM votes WHERE project_id = ? AND pair_id = ?"
            " UNION ALL SELECT 1 FROM skips WHERE project_id = ? AND pair_id = ?",
            (project_id, pair_id, project_id, pair_id),
        )
        return bool(rows)

    def last_vote(self, project_id: int, labeler: str) -> VoteRow | None:
        rows = self._query(
            "SELECT * FROM votes WHERE project_id = ? AND labeler = ? AND undone = 0"
            " ORDER BY id DESC LIMIT 1",
            (project_id, labeler),
        )
        return _vote(rows[0]) if rows else None

    def mark_undone(self, vote_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE votes SET undone = 1, undone_at = ? WHERE id = ?", (time.time(), vote_id)
            )

    def add_skip(
        self, project_id: int, pair_id: str | None, left: str, right: str, labeler: str
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO skips(project_id, pair_id, left_uid, right_uid, labeler, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (project_id, pair_id, left, right, labeler, time.time()),
            )
            if pair_id is not None:
                db.execute(
                    "DELETE FROM assignments WHERE project_id = ? AND pair_id = ?",
                    (project_id, pair_id),
                )

    def skips(self, project_id: int) -> list[tuple[str, str, str]]:
        rows = self._query(
            "SELECT left_uid, right_uid, labeler FROM skips WHERE project_id = ? ORDER BY id",
            (project_id,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    # --- assignments (the pair each labeler is looking at) ----------------------------
    def assign(self, project_id: int, labeler: str, a: Assignment) -> None:
        """Record the pair a labeler is shown; not fsynced (a lost one is just re-drawn)."""
        with self.transaction(durable=False) as db:
            db.execute(
                "INSERT OR REPLACE INTO assignments VALUES (?,?,?,?,?,?)",
                (project_id, labeler, a.pair_id, a.left_uid, a.right_uid, a.issued_at),
            )

    def delete_open_pairs(self, project_id: int, issued_before: float) -> int:
        """Forget open pairs handed out before ``issued_before``; returns how many.

        Anonymous visitors leave their open pair behind when they go; a vote that
        names a forgotten pair is refused as unknown. Not fsynced, like ``assign``.
        """
        with self.transaction(durable=False) as db:
            cur = db.execute(
                "DELETE FROM assignments WHERE project_id = ? AND issued_at < ?",
                (project_id, issued_before),
            )
            return cur.rowcount

    def assignments(self, project_id: int) -> dict[str, Assignment]:
        rows = self._query("SELECT * FROM assignments WHERE project_id = ?", (project_id,))
        return {
            r["labeler"]: Assignment(r["pair_id"], r["left_uid"], r["right_uid"], r["issued_at"])
            for r in rows
        }

    def find_assignment(self, project_id: int, pair_id: str) -> tuple[str, Assignment] | None:
        rows = self._query(
            "SELECT * FROM assignments WHERE project_id = ? AND pair_id = ?", (project_id, pair_id)
        )
        if not rows:
            return None
        r = rows[0]
        return r["labeler"], Assignment(r["pair_id"], r["left_uid"], r["right_uid"], r["issued_at"])


def _project(r: sqlite3.Row) -> ProjectRow:
    return ProjectRow(
        r["id"], r["name"], r["instruction"], json.loads(r["settings"]), r["created_at"]
    )


def _image(r: sqlite3.Row) -> ImageRow:
    return ImageRow(
        uid=r["uid"],
        position=r["position"],
        path=r["path"],
        name=r["name"],
        width=r["width"],
        height=r["height"],
        format=r["format"],
        bytes=r["bytes"],
        context=r["context"],
        excluded=bool(r["excluded"]),
        exclusion_reason=r["exclusion_reason"],
        excluded_after_vote=r["excluded_after_vote"],
        prior_mu=r["prior_mu"],
        prior_sigma=r["prior_sigma"],
    )


def _vote(r: sqlite3.Row) -> VoteRow:
    return VoteRow(
        id=r["id"],
        pair_id=r["pair_id"],
        left_uid=r["left_uid"],
        right_uid=r["right_uid"],
        outcome=r["outcome"],
        labeler=r["labeler"],
        created_at=r["created_at"],
        response_ms=r["response_ms"],
        undone=bool(r["undone"]),
        source=r["source"],
    )
