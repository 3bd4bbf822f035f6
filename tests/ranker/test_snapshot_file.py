"""The model-in-the-loop selector's snapshots on disk: a restart replays only the votes
since the last refit and ends in the very state (same floats) a full replay gives; a
stale, foreign, corrupt or truncated file is ignored (with a log line) and the selector
replays every vote, as before."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ranker.attached import PrequentialLoop, snapshot_path
from ranker.online_head import HeadFeatures, OnlineHead
from ranker.pool import Pool
from ranker.selection.model_loop import ModelLoopSelector
from ranker.selection.snapshot_file import SnapshotFile
from ranker.service import Studio
from tests.ranker.test_attached import INFO, _features, _project, _truth, _vote_truthfully
from tests.ranker.test_model_loop import _assert_same, _label, _state
from tests.ranker.test_model_loop import _project as _world

ROOT = Path(__file__).resolve().parents[2]


class Spy(PrequentialLoop):
    """Records the vote each rebuild restarts at (0: a full replay)."""

    def __init__(self, *args, **options) -> None:
        self.restarts: list[int] = []
        super().__init__(*args, **options)

    def rewind(self, votes: int) -> None:
        super().rewind(votes)
        self.restarts.append(votes)


def _live(tmp_path, evidence: bool = False):
    """A selector that labelled 200 votes (the guard on, then off) with its file."""
    features, q, rng = _world(signal=True)
    pool = Pool.empty(150)
    file = SnapshotFile(tmp_path / "loop.npz")
    live = PrequentialLoop(features, refit_every=10, evidence=evidence, snapshot_file=file)
    _label(live, pool, q, rng, 80)
    _label(live, pool, -q, rng, 120)
    assert len(live.switches) >= 2 and pool.n_votes == 200
    return features, pool, file, live


def _full_replay(features, pool, **options) -> dict:
    fresh = PrequentialLoop(features, refit_every=10, **options)
    fresh.ranking(pool)
    return _state(fresh)


def _restart(features, pool, file, **options) -> Spy:
    again = Spy(features, refit_every=10, snapshot_file=file, **options)
    again.ranking(pool)
    return again


@pytest.mark.parametrize("evidence", [False, True])
def test_a_restart_restores_the_file_and_equals_a_full_replay_bit_for_bit(tmp_path, evidence):
    features, pool, file, live = _live(tmp_path, evidence)
    again = _restart(features, pool, file, evidence=evidence)
    assert again.restarts == [190]  # the last refit before vote 200: 10 votes replayed
    _assert_same(_state(again), _full_replay(features, pool, evidence=evidence))
    _assert_same(_state(again), _state(live))
    # it goes on as a full replay would: a new vote, an undo through the restored snapshot
    pool.record(3, 4, False)
    again.observe(pool, 3, 4, 1.0)
    _assert_same(_state(again), _full_replay(features, pool, evidence=evidence))
    for votes in (pool.first, pool.second, pool.result):
        del votes[-5:]
    again.reset()
    again.ranking(pool)
    assert again.restarts[-1] == 190
    _assert_same(_state(again), _full_replay(features, pool, evidence=evidence))


def test_a_log_that_lost_the_vote_of_the_last_refit_restores_the_one_before(tmp_path):
    features, pool, file, _ = _live(tmp_path)
    for votes in (pool.first, pool.second, pool.result):
        del votes[190:]  # 190 votes: the refit at 190 was never reached
    again = _restart(features, pool, file)
    assert again.restarts == [180]
    _assert_same(_state(again), _full_replay(features, pool))


def test_a_vote_undone_inside_the_snapshots_prefix_means_a_full_replay(tmp_path, caplog):
    features, pool, file, _ = _live(tmp_path)
    for votes in (pool.first, pool.second, pool.result):
        del votes[50]  # another labeler's old vote undone: later votes stay
    with caplog.at_level(logging.INFO, "ranker.selection.snapshot_file"):
        again = _restart(features, pool, file)
    assert again.restarts == [0]
    assert "2 of 2 stale" in caplog.text
    _assert_same(_state(again), _full_replay(features, pool))
    assert _restart(features, pool, file).restarts == [190]  # the replay wrote anew


@pytest.mark.parametrize("change", ["features", "evidence", "refit", "guard"])
def test_other_features_or_settings_never_restore(tmp_path, caplog, change):
    features, pool, file, _ = _live(tmp_path)
    options, refit_every = {}, 10
    if change == "features":  # one float of one image differs
        phi = features.phi.copy()
        phi[7, 3] = np.nextafter(phi[7, 3], np.float32(np.inf))
        features = HeadFeatures(phi, features.map)
    elif change == "evidence":
        options = {"evidence": True}
    elif change == "guard":
        options = {"guard_nats": 3.0}
    else:
        refit_every = 20
    with caplog.at_level(logging.INFO, "ranker.selection.snapshot_file"):
        again = Spy(features, refit_every=refit_every, snapshot_file=file, **options)
        again.ranking(pool)
    assert again.restarts == [0]
    assert "other features or settings" in caplog.text
    fresh = PrequentialLoop(features, refit_every=refit_every, **options)
    fresh.ranking(pool)
    _assert_same(_state(again), _state(fresh))


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":  # one byte inside a stored array: the zip's CRC catches it
        i = data.index(b"s1.head.u.npy") + 400
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(os.urandom(5000))
    elif how == "wrong shape":  # a well-formed file whose arrays do not fit the features
        with np.load(path) as stored:
            arrays = dict(stored)
        arrays["s1.head.u"] = arrays["s1.head.u"][:-1]
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    elif how == "no record":  # written by a selector that records nothing
        with np.load(path) as stored:
            arrays = {k: v for k, v in stored.items() if k != "record"}
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)


@pytest.mark.parametrize(
    "how", ["truncated", "flipped", "empty", "garbage", "wrong shape", "no record"]
)
def test_a_corrupt_or_truncated_file_falls_back_to_a_full_replay(tmp_path, caplog, how):
    features, pool, file, _ = _live(tmp_path)
    _corrupt(file.path, how)
    with caplog.at_level(logging.INFO, "ranker.selection.snapshot_file"):
        again = _restart(features, pool, file)
    assert again.restarts == [0]
    if how != "no record":
        assert "ignoring the unreadable model-loop snapshot" in caplog.text
    _assert_same(_state(again), _full_replay(features, pool))


def test_a_file_that_cannot_be_written_costs_only_speed(tmp_path, caplog):
    features, q, rng = _world(signal=True)
    (tmp_path / "blocker").write_text("a file where the folder should be")
    file = SnapshotFile(tmp_path / "blocker" / "loop.npz")
    pool = Pool.empty(150)
    with caplog.at_level(logging.WARNING, "ranker.selection.snapshot_file"):
        sel = PrequentialLoop(features, refit_every=10, snapshot_file=file)
        _label(sel, pool, q, rng, 30)
    assert "could not write the model-loop snapshot" in caplog.text
    _assert_same(_state(sel), _full_replay(features, pool))


def test_without_snapshots_nothing_is_written(tmp_path):
    features, q, rng = _world(signal=True)
    file = SnapshotFile(tmp_path / "loop.npz")
    sel = ModelLoopSelector(features, refit_every=10, snapshots=False, snapshot_file=file)
    _label(sel, Pool.empty(150), q, rng, 30)
    assert not file.path.exists()


# ---- the app: a project reopened (a restart), detached -----------------------------------


def _board_and_state(project) -> tuple[list, object, dict]:
    board, status = project.leaderboard(), project.model_status()
    return board, status, _state(project.selector)


def test_a_restarted_project_restores_its_snapshot_and_equals_a_full_replay(tmp_path, monkeypatch):
    studio, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 25)  # refits (and snapshots) at 10 and 20 votes
    _vote_truthfully(project, quality, 1)
    project.undo("alice")  # the log the file was made from is the one that counts
    before = _board_and_state(project)
    file = snapshot_path(studio.store.path, project.row.id)
    assert file.exists()
    studio.close()
    refits = []
    with monkeypatch.context() as m:
        m.setattr(OnlineHead, "refit", lambda self, f=OnlineHead.refit: refits.append(f(self)))
        again = Studio(tmp_path / "studio.db").project("p")
        restored = _board_and_state(again)
    assert refits == []  # restored at 20 votes: 5 online steps, no refit
    file.unlink()  # the same restart without the file: every vote replayed
    replayed = _board_and_state(Studio(tmp_path / "studio.db").project("p"))
    for got in (restored, before):
        assert got[0] == replayed[0] and got[1] == replayed[1]
        _assert_same(got[2], replayed[2])


def test_a_fresh_process_restores_the_same_state(tmp_path):
    studio, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 33)
    board, status, state = _board_and_state(project)
    studio.close()
    child = """
import json, sys
import numpy as np
from ranker.online_head import OnlineHead
from ranker.service import Studio
refits = []
OnlineHead.refit = lambda self, f=OnlineHead.refit: refits.append(f(self))
p = Studio(sys.argv[1]).project("p")
board = p.leaderboard()
h = p.selector.head
print(json.dumps({"refits": len(refits), "board": board, "predictions": p.selector.predictions,
    "scores": h.scores.tolist(), "beta": h.fit.beta.tolist(), "u": h.fit.u.tolist(),
    "excess_loss": p.selector.excess_loss, "switches": p.selector.switches}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path / "studio.db")],
        capture_output=True, text=True, check=True, cwd=ROOT, env=env,
    )  # fmt: skip
    got = json.loads(out.stdout)
    assert got["refits"] == 0  # restored at 30 votes
    assert got["board"] == json.loads(json.dumps(board))
    assert got["predictions"] == state["predictions"]  # floats round-trip json exactly
    assert got["excess_loss"] == state["excess_loss"] and got["switches"] == state["switches"]
    for name in ("scores", "beta", "u"):
        want = state[f"head.{name}"]
        assert np.array_equal(np.asarray(got[name], dtype=want.dtype), want), name


def test_detaching_deletes_the_snapshot_with_the_features(tmp_path):
    studio, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 12)
    file = snapshot_path(studio.store.path, project.row.id)
    assert file.exists() and project.features_file.exists()
    assert project.detach_model()
    assert not file.exists() and not project.features_file.exists()


def test_attaching_the_same_model_again_restores_and_new_features_replay(tmp_path, monkeypatch):
    _, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 25)
    before = _board_and_state(project)
    refits = []
    with monkeypatch.context() as m:
        m.setattr(OnlineHead, "refit", lambda self, f=OnlineHead.refit: refits.append(f(self)))
        project.attach_model(INFO, *_features(project, emb, quality))  # the same embeddings
        again = _board_and_state(project)
        assert refits == []  # a new features object, the same floats: from the file
        project.attach_model(INFO, *_features(project, emb * 1.01, quality))  # new features
        project.leaderboard()
        assert len(refits) == 4  # every vote replayed: refits at 10 and 20, both fits
    assert again[0] == before[0] and again[1] == before[1]
    _assert_same(again[2], before[2])
