"""The vote log: one SQLite file (WAL, synchronous=FULL) holds every project.

The votes table is append-only; undo sets a flag and a time, nothing is deleted.
Every write commits before the call returns, so an acknowledged vote survives a
crash, power loss included. The one exception is the open pairs (``assignments``):
losing one only means the labeler is shown a new pair, so those writes skip the
fsync (see :mod:`ranker.sqlite_db`). One :class:`Store` is safe to share between
threads. The tables and row types live in :mod:`ranker.schema` and are re-exported
here, so ``from ranker.store import Store, ImageRow, VoteRow`` keeps working.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from common.contracts import DEFAULT_INSTRUCTION, OUTCOMES
from ranker.errors import DuplicateVoteError, StudioError, UnknownProjectError
from ranker.schema import (
    SCHEMA,
    Assignment,
    ImageRow,
    NewVote,
    ProjectRow,
    VoteRow,
    migrate,
    vote_from_record,
)
from ranker.sqlite_db import Database

__all__ = [
    "SCHEMA",
    "Assignment",
    "ImageRow",
    "NewVote",
    "ProjectRow",
    "Store",
    "VoteRow",
    "vote_from_record",
]


class Store(Database):
    """Typed access to the SQLite vote log."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA)
        with self.transaction() as db:
            migrate(db)

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
        return ProjectRow.from_db(rows[0])

    def list_projects(self) -> list[ProjectRow]:
        return [ProjectRow.from_db(r) for r in self._query("SELECT * FROM projects ORDER BY id")]

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
        return [ImageRow.from_db(r) for r in rows]

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
        return [VoteRow.from_db(r) for r in rows]

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
        return VoteRow.from_db(rows[0]) if rows else None

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
    def assign(self, project_id: int, labeler: str, a: Assignment, slot: int = 0) -> None:
        """Record the pair a labeler holds in look-ahead ``slot``; not fsynced (a lost one
        is just re-drawn)."""
        with self.transaction(durable=False) as db:
            db.execute(
                "INSERT OR REPLACE INTO assignments"
                "(project_id, labeler, pair_id, left_uid, right_uid, issued_at, slot)"
                " VALUES (?,?,?,?,?,?,?)",
                (project_id, labeler, a.pair_id, a.left_uid, a.right_uid, a.issued_at, slot),
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

    def assignments(
        self, project_id: int, labeler: str | None = None
    ) -> dict[tuple[str, int], Assignment]:
        """Open pairs by (labeler, slot); only ``labeler``'s when given."""
        sql, params = "SELECT * FROM assignments WHERE project_id = ?", [project_id]
        if labeler is not None:
            sql, params = sql + " AND labeler = ?", [project_id, labeler]
        rows = self._query(sql, params)
        return {(r["labeler"], r["slot"]): Assignment.from_db(r) for r in rows}

    def find_assignment(self, project_id: int, pair_id: str) -> tuple[str, Assignment] | None:
        rows = self._query(
            "SELECT * FROM assignments WHERE project_id = ? AND pair_id = ?", (project_id, pair_id)
        )
        if not rows:
            return None
        r = rows[0]
        return r["labeler"], Assignment.from_db(r)
