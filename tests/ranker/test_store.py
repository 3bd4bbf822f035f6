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
    assert store.assignments(project.id)["alice"].pair_id == "p1"


def test_failed_open_pair_write_rolls_back_and_restores_full(store):
    project = store.create_project("demo")
    with pytest.raises(RuntimeError, match="boom"), store.transaction(durable=False) as db:
        db.execute(
            "INSERT INTO assignments VALUES (?,?,?,?,?,?)", (project.id, "bob", "p2", "a", "b", 1.0)
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
