"""One SQLite connection in WAL mode, shared by threads, with a durability level per write.

Writes are durable by default (``synchronous=FULL``: the WAL is fsynced before
``COMMIT`` returns), so what a caller was told is on disk survives a power cut. A
write whose loss is harmless (an open pair) may ask for ``durable=False``: it commits
at ``synchronous=NORMAL`` and skips the fsync; WAL keeps the file consistent either
way, and the next durable commit syncs it along (one fsync covers the whole WAL).
Other processes may open the same file (WAL lets readers and a writer mix).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    """The connection behind a lock; :class:`ranker.store.Store` adds the typed tables."""

    def __init__(self, path: str | Path, schema: str) -> None:
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
        self._db.executescript(schema)

    def ensure_schema(self, schema: str) -> None:
        """Create the tables of a module that keeps its own (``CREATE ... IF NOT EXISTS``)."""
        with self._lock:
            self._db.executescript(schema)

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
