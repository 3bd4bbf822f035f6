"""The vote log's tables: the SQL schema and one frozen dataclass per kind of row.

:class:`ranker.store.Store` creates these tables and hands out these rows; importers,
exporters and the service build new rows here (``ImageRow.from_info``,
``vote_from_record``, ``vote_record``) so every reader and writer agrees on one shape.
Import them from :mod:`ranker.store` or from here; both names stay.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields

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
    slot INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, labeler, slot)
);
"""
"""``assignments.slot``: a labeler's look-ahead slot (0 = the pair on screen, 1.. the
pairs preloaded after it; :data:`ranker.session.LOOKAHEAD`)."""

LEGACY_SLOT_MARK = "#next"
"""How databases before the ``slot`` column named look-ahead slots: the labeler
``alice`` held slot 1 as ``alice#next`` and slot k as ``alice#nextk``. Only
:func:`migrate` reads it; no labeler name may contain ``#`` (:mod:`ranker.labelers`)."""


def legacy_slot(key: str) -> tuple[str, int]:
    """(labeler, slot) of an old assignment key.

    >>> legacy_slot("alice#next"), legacy_slot("alice#next2"), legacy_slot("alice")
    (('alice', 1), ('alice', 2), ('alice', 0))
    """
    holder, mark, rest = key.partition(LEGACY_SLOT_MARK)
    if not mark:
        return key, 0
    return holder, int(rest) if rest.isdigit() else 1


def migrate(db: sqlite3.Connection) -> bool:
    """Bring a database made before the ``slot`` column up to date; True if it changed.

    The old ``assignments`` table (open pairs: short-lived, never votes) is rebuilt
    with each look-ahead key split into labeler and slot; skips recorded under a slot
    key get their labeler's name. Votes are not touched (they always carried the real
    name). Runs in the caller's transaction, so it happens entirely or not at all.
    """
    columns = {r[1] for r in db.execute("PRAGMA table_info(assignments)")}
    if "slot" in columns:
        return False
    rows = db.execute(
        "SELECT project_id, labeler, pair_id, left_uid, right_uid, issued_at FROM assignments"
    ).fetchall()
    db.execute("ALTER TABLE assignments RENAME TO assignments_before_slots")
    start = SCHEMA.index("CREATE TABLE IF NOT EXISTS assignments")
    db.execute(SCHEMA[start : SCHEMA.index(");", start) + 2])  # not executescript: it commits
    for project_id, key, pair_id, left, right, issued in rows:
        labeler, slot = legacy_slot(key)
        db.execute(
            "INSERT OR REPLACE INTO assignments VALUES (?,?,?,?,?,?,?)",
            (project_id, labeler, pair_id, left, right, issued, slot),
        )
    db.execute("DROP TABLE assignments_before_slots")
    for skip_id, key in db.execute(
        "SELECT id, labeler FROM skips WHERE labeler LIKE ?", (f"%{LEGACY_SLOT_MARK}%",)
    ).fetchall():
        db.execute("UPDATE skips SET labeler = ? WHERE id = ?", (legacy_slot(key)[0], skip_id))
    return True


@dataclass(frozen=True)
class ProjectRow:
    id: int
    name: str
    instruction: str
    settings: dict
    created_at: float

    @classmethod
    def from_db(cls, r: sqlite3.Row) -> ProjectRow:
        return cls(r["id"], r["name"], r["instruction"], json.loads(r["settings"]), r["created_at"])


def _from_db(cls, r: sqlite3.Row, flags: tuple[str, ...] = ()):
    """A row dataclass whose fields are its table's columns (SQLite stores ``flags`` as 0/1)."""
    values = {f.name: r[f.name] for f in fields(cls)}
    return cls(**{**values, **{k: bool(values[k]) for k in flags}})


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
        """A new row from an intake record: the fields of ``ranker.intake.ImageInfo`` (an
        import's state beyond them, exclusions and priors, is set by its own calls)."""
        from ranker.intake import ImageInfo

        return cls(position=position, **{f.name: getattr(info, f.name) for f in fields(ImageInfo)})

    @classmethod
    def from_db(cls, r: sqlite3.Row) -> ImageRow:
        return _from_db(cls, r, flags=("excluded",))


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

    @classmethod
    def from_db(cls, r: sqlite3.Row) -> VoteRow:
        return _from_db(cls, r, flags=("undone",))

    @property
    def winner_loser(self) -> tuple[str, str]:
        """(winner, loser); for a tie, (left, right)."""
        if self.outcome == "right":
            return self.right_uid, self.left_uid
        return self.left_uid, self.right_uid


@dataclass(frozen=True)
class Assignment:
    """An open pair: shown to a labeler, not yet answered or skipped."""

    pair_id: str
    left_uid: str
    right_uid: str
    issued_at: float

    @classmethod
    def from_db(cls, r: sqlite3.Row) -> Assignment:
        return cls(r["pair_id"], r["left_uid"], r["right_uid"], r["issued_at"])


NewVote = tuple[str | None, str, str, str, str, float, float | None, str]
"""(pair_id, left_uid, right_uid, outcome, labeler, created_at, response_ms, source)"""


def vote_record(vote: VoteRow) -> dict:
    """A vote as our JSON export and the backup log write it: the inverse of
    :func:`vote_from_record` (the backup adds its ``source``)."""
    return {
        "left": vote.left_uid,
        "right": vote.right_uid,
        "outcome": vote.outcome,
        "labeler": vote.labeler,
        "created_at": vote.created_at,
        "response_ms": vote.response_ms,
    }


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
