"""The SQLite vote log: durability levels per kind of write."""

import pytest

from ranker.service import Studio
from ranker.store import Assignment, ImageRow, Store

FULL, NORMAL = 2, 1


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "studio.db")
    yield s
    s.close()


def test_open_pair_write_skips_fsync_and_restores_full(store):
    project = store.create_project("demo")
    assert store.synchronous() == FULL
    with store.transaction(durable=False) as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == NORMAL
    store.assign(project.id, "alice", Assignment("p1", "a", "b", 1.0))
    assert store.synchronous() == FULL
    assert store.assignments(project.id)[("alice", 0)].pair_id == "p1"


def test_failed_open_pair_write_rolls_back_and_restores_full(store):
    project = store.create_project("demo")
    with pytest.raises(RuntimeError, match="boom"), store.transaction(durable=False) as db:
        db.execute(
            "INSERT INTO assignments VALUES (?,?,?,?,?,?,?)",
            (project.id, "bob", "p2", "a", "b", 1.0, 0),
        )
        raise RuntimeError("boom")
    assert store.synchronous() == FULL
    assert store.assignments(project.id) == {}
    store.add_votes(project.id, [(None, "a", "b", "left", "bob", 1.0, None, "app")])
    assert store.vote_count(project.id) == 1


def test_service_leaves_full_after_handing_out_a_pair(tmp_path):
    studio = Studio(tmp_path / "studio.db")
    project = studio.create_project("demo", strategy="random")
    rows = [ImageRow(f"{i:04d}", i, f"/x/{i}.png", f"{i}.png", 8, 8, "PNG", 1) for i in range(4)]
    studio.store.add_images(project.row.id, rows)
    studio._sessions.clear()
    pair = studio.project("demo").next_pair("alice")
    assert studio.store.synchronous() == FULL
    studio.project("demo").vote(pair.pair_id, "left", "alice")
    assert studio.store.synchronous() == FULL
    studio.close()


def test_a_database_from_before_look_ahead_slots_is_migrated(tmp_path):
    """Old files named look-ahead slots ``alice#next``/``alice#next2`` in the labeler
    column; they open with the slot in its own column, votes and skips kept."""
    import sqlite3

    path = tmp_path / "old.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TABLE assignments;"
        "CREATE TABLE assignments (project_id INTEGER NOT NULL, labeler TEXT NOT NULL,"
        " pair_id TEXT NOT NULL, left_uid TEXT NOT NULL, right_uid TEXT NOT NULL,"
        " issued_at REAL NOT NULL, PRIMARY KEY (project_id, labeler));"
        "INSERT INTO projects VALUES (1, 'p', 'which?', '{}', 0);"
        "INSERT INTO assignments VALUES (1, 'alice', 'p0', 'a', 'b', 3.0),"
        " (1, 'alice#next', 'p1', 'c', 'd', 1.0), (1, 'alice#next2', 'p2', 'e', 'f', 2.0);"
        "INSERT INTO skips(project_id, pair_id, left_uid, right_uid, labeler, created_at)"
        " VALUES (1, 'p9', 'a', 'c', 'alice#next', 4.0);"
        "INSERT INTO votes(project_id, pair_id, left_uid, right_uid, outcome, labeler, created_at)"
        " VALUES (1, 'p8', 'a', 'b', 'left', 'alice', 5.0);"
    )
    db.commit()
    db.close()
    store = Store(path)
    held = store.assignments(1)
    assert {k: a.pair_id for k, a in held.items()} == {
        ("alice", 0): "p0",
        ("alice", 1): "p1",
        ("alice", 2): "p2",
    }
    assert store.skips(1) == [("a", "c", "alice")]
    assert store.vote_count(1) == 1
    store.close()
    assert Store(path).assignments(1, "alice") == held  # a second open changes nothing
