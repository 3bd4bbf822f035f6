"""The ranking service: projects, pairs, votes, undo and the leaderboard.

This is the one orchestrator the app, the CLI and the API call. It joins the
durable vote log (:mod:`ranker.store`), the ratings replay (:mod:`ranker.ratings`)
and the pair selectors (:mod:`ranker.selection`). Every write reaches the database
before the in-memory state changes, so what a caller was told is what is on disk.

The session is built in layers, each its own module: :mod:`ranker.project_state`
(the replayed state, owner edits, read-outs), :mod:`ranker.session` (the labeling
flow) and :mod:`ranker.results` (leaderboard, progress). They are re-exported here,
so ``from ranker.service import Studio, ProjectSession, Matchup`` keeps working.

Example:
    >>> studio = Studio("studio.db")                             # doctest: +SKIP
    >>> project = studio.create_project("demo", folder="images/")  # doctest: +SKIP
    >>> pair = project.next_pair("alice")                        # doctest: +SKIP
    >>> project.vote(pair.pair_id, "left", "alice")              # doctest: +SKIP
"""

from __future__ import annotations

import threading
from pathlib import Path

from ranker.attached import features_path, snapshot_path
from ranker.project_state import DEFAULT_SETTINGS, ProjectState
from ranker.ratings import RatingConfig
from ranker.results import Progress
from ranker.session import (
    OPEN_PAIR_MAX_AGE,
    OPEN_PAIR_SWEEP_EVERY,
    RESERVE_SECONDS,
    Matchup,
    ProjectSession,
)
from ranker.store import ProjectRow, Store

__all__ = [
    "DEFAULT_SETTINGS",
    "OPEN_PAIR_MAX_AGE",
    "OPEN_PAIR_SWEEP_EVERY",
    "RESERVE_SECONDS",
    "Matchup",
    "Progress",
    "ProjectSession",
    "ProjectState",
    "Studio",
]


class Studio:
    """All projects in one SQLite file; hands out one live session per project."""

    def __init__(self, db_path: str | Path) -> None:
        self.store = Store(db_path)
        self._sessions: dict[str, ProjectSession] = {}
        self._lock = threading.Lock()

    def list_projects(self) -> list[ProjectRow]:
        return self.store.list_projects()

    def create_project(
        self, name: str, instruction: str | None = None, **settings
    ) -> ProjectSession:
        merged = {**DEFAULT_SETTINGS, **settings}
        RatingConfig.from_settings(merged)
        from ranker.selection import make_selector

        make_selector(merged["strategy"])
        self.store.create_project(name, instruction, settings)
        return self.project(name)

    def project(self, name: str) -> ProjectSession:
        with self._lock:
            if name not in self._sessions:
                self._sessions[name] = ProjectSession(self.store, self.store.get_project(name))
            return self._sessions[name]

    def delete_project(self, name: str) -> None:
        with self._lock:
            row = self.store.get_project(name)
            self.store.delete_project(row.id)
            self._sessions.pop(name, None)
            # the model loop's files beside the database are the project's too
            features_path(self.store.path, row.id).unlink(missing_ok=True)
            snapshot_path(self.store.path, row.id).unlink(missing_ok=True)

    def close(self) -> None:
        self.store.close()
