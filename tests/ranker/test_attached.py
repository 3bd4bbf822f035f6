"""A model attached to a project (ranker side, numpy features: no torch here).

Attaching turns the project's selector into the model-in-the-loop one and its ``auto``
ranking into the head's; every vote is predicted before it is used (held-out
agreement); undo rewinds the head; detaching gives exactly today's behaviour back; a
restart keeps the attachment without any model loaded.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from ranker.attached import PrequentialLoop, StoredFeatures, features_for
from ranker.errors import StudioError
from ranker.online_head import OnlineHead
from ranker.service import Studio
from tests.ranker.helpers import make_images

N, D = 24, 8
INFO = {"source": "synthetic", "label": "synthetic model", "fingerprint": "fp1"}


def _truth(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((N, D)).astype(np.float32)
    return emb, emb @ np.linspace(1.0, 0.1, D)  # quality: a direction in embedding space


def _project(tmp_path, name: str = "p", db: str = "studio.db"):
    studio = Studio(tmp_path / db)
    project = studio.create_project(name)
    project.add_folder(make_images(tmp_path / "imgs", N)[0].parent)
    return studio, project


def _features(project, emb, base) -> tuple:
    return [img.uid for img in project.images], emb, base


def _vote_truthfully(project, quality, n: int, labeler: str = "alice") -> None:
    for _ in range(n):
        m = project.next_pair(labeler)
        i, j = project.index[m.left.uid], project.index[m.right.uid]
        project.vote(m.pair_id, "left" if quality[i] > quality[j] else "right", labeler)


def _copy_votes(source, target) -> None:
    target.record_votes(
        [
            (
                uuid.uuid4().hex,
                v.left_uid,
                v.right_uid,
                v.outcome,
                v.labeler,
                time.time(),
                None,
                "t",
            )
            for v in source.votes()
        ]
    )


def test_attach_ranks_by_the_head_and_marks_what_rests_on_votes(tmp_path):
    _, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    assert isinstance(project.selector, PrequentialLoop)
    _vote_truthfully(project, quality, 6)
    rows = project.leaderboard()
    marks = {r["uid"]: r["ranked_by"] for r in rows}
    voted = {img.uid for i, img in enumerate(project.images) if project.ratings.pool.counts[i]}
    assert {u for u, m in marks.items() if m == "votes"} == voted
    assert set(marks.values()) <= {"votes", "model", "none"}
    status = project.model_status()
    assert status.attached and status.ready and status.missing == 0
    assert status.on_votes == pytest.approx(len(voted) / N)
    if project.selector.model_on:  # auto = the head's combined ranking
        scores = project.selector.head.scores
        assert [r["uid"] for r in rows][0] == project.images[int(np.argmax(scores))].uid


def test_every_vote_is_predicted_before_it_is_used(tmp_path):
    _, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    # 60 votes (2.5 per image): active's first pass (under 1 vote per image) serves
    # auto-shuffle's close pairs, which 30 votes were mostly spent on
    _vote_truthfully(project, quality, 60)
    status = project.model_status()
    assert status.votes_judged == 60
    assert status.agreement is not None and status.agreement >= 0.8  # base = the truth
    # the first vote was judged by the untouched head: a fresh one predicts the same
    features, _ = features_for(project.stored_features(), [img.uid for img in project.images])
    pool = project.ratings.pool
    fresh = OnlineHead(features).predict(int(pool.first[0]), int(pool.second[0]))
    assert project.selector.predictions[0] == pytest.approx(fresh)
    # a base model that says the opposite, on embeddings without the votes' signal, is
    # caught disagreeing at first and never matches the good one
    _, other = _project(tmp_path / "b")
    noise, _ = _truth(seed=1)
    other.attach_model(INFO, *_features(other, noise, -quality))
    _vote_truthfully(other, quality, 60)
    assert other.model_status().agreement < status.agreement
    assert other.selector.predictions[0] < 0.5  # the base head alone, reversed


def test_undo_rewinds_the_head(tmp_path):
    _, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 12)
    project.leaderboard()
    scores, status = project.selector.head.scores.copy(), project.model_status()
    _vote_truthfully(project, quality, 1)
    assert project.model_status().votes_judged == 13
    project.undo("alice")
    project.leaderboard()
    assert np.array_equal(project.selector.head.scores, scores)
    assert project.model_status() == status


def test_detached_equals_todays_ranking_exactly(tmp_path):
    _, project = _project(tmp_path)
    _, twin = _project(tmp_path, "twin")  # never attached
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 20)
    _copy_votes(project, twin)
    assert project.detach_model() and not project.detach_model()
    assert not project.features_file.exists()
    assert type(project.selector) is type(twin.selector)
    for order in ("auto", "conservative", "mu", "refit"):
        assert project.leaderboard(order) == twin.leaderboard(order)
    assert "ranked_by" not in project.leaderboard()[0]
    assert not project.model_status().attached


def test_a_restart_keeps_the_attachment_without_a_model(tmp_path):
    studio, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 15)
    board, status = project.leaderboard(), project.model_status()
    studio.close()
    again = Studio(tmp_path / "studio.db").project("p")
    assert again.attached_model == INFO
    assert isinstance(again.selector, PrequentialLoop)
    assert again.leaderboard() == board
    assert again.model_status() == status


def test_new_images_wait_for_their_features(tmp_path):
    _, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    extra = make_images(tmp_path / "more", N + 2)[N:]
    project.add_files(extra)
    assert project.images_without_features() == [img.uid for img in project.images[N:]]
    assert not isinstance(project.selector, PrequentialLoop)  # today's strategy meanwhile
    assert project.model_status().missing == 2 and not project.model_status().ready
    project.next_pair("alice")  # still hands out pairs
    project.add_model_features(
        [img.uid for img in project.images[N:]], np.zeros((2, D), np.float32), np.zeros(2)
    )
    assert isinstance(project.selector, PrequentialLoop)
    assert project.model_status().ready


def test_bad_features_are_refused_by_name(tmp_path):
    _, project = _project(tmp_path)
    uids = [img.uid for img in project.images]
    with pytest.raises(StudioError, match="embeddings must be"):
        StoredFeatures(uids, np.zeros((3, D), np.float32), np.zeros(N))
    with pytest.raises(StudioError, match="finite"):
        StoredFeatures(uids, np.full((N, D), np.nan, np.float32), np.zeros(N))
    with pytest.raises(StudioError, match="source"):
        project.attach_model({}, uids, np.zeros((N, D), np.float32), np.zeros(N))
    with pytest.raises(StudioError, match="no model is attached"):
        project.add_model_features([], np.zeros((0, D), np.float32), np.zeros(0))
    with pytest.raises(StudioError, match="unknown project settings"):
        project.update(model={"source": "x"})  # only attach_model sets it


def test_the_online_head_leaves_as_a_linear_model_on_the_embeddings(tmp_path):
    """What an export writes: c * base + w . x + b equals the head's scores (offsets out);
    with the offsets added it is the ``auto`` ranking the project shows."""
    from ranker.attached import linear_head

    _, project = _project(tmp_path)
    emb, quality = _truth(3)
    base = emb @ np.linspace(0.1, 1.0, D)  # a base head at an angle to the taste
    with pytest.raises(StudioError, match="not running"):
        project.online_head()
    project.attach_model(INFO, *_features(project, emb, base))
    _vote_truthfully(project, quality, 30)
    head = project.online_head()
    assert head.votes == 30
    direct = head.base_weight * base + emb.astype(np.float64) @ head.weights + head.bias
    np.testing.assert_allclose(direct, head.scores, atol=1e-4)
    sel = project.selector
    np.testing.assert_allclose(head.scores + sel.head.fit.u, sel.head.scores, atol=1e-4)
    assert head.model_on == sel.model_on
    with pytest.raises(StudioError, match="not running"):
        linear_head(object(), project.ratings.pool)


def test_a_settings_change_keeps_the_snapshots_and_equals_a_restart(tmp_path, monkeypatch):
    studio, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 25)  # refits (and snapshots) at 10 and 20 votes
    old = project.selector
    project.update(instruction="Which one is sharper?")  # a reload: a new selector
    assert project.selector is not old and project.selector._snapshots is old._snapshots
    refits = []
    with monkeypatch.context() as m:
        m.setattr(OnlineHead, "refit", lambda self, f=OnlineHead.refit: refits.append(f(self)))
        board, status = project.leaderboard(), project.model_status()
    assert refits == []  # restored at 20 votes: 5 online steps, no refit
    predictions, scores = project.selector.predictions, project.selector.head.scores.copy()
    studio.close()
    again = Studio(tmp_path / "studio.db").project("p")  # a restart: from the file
    assert again.leaderboard() == board and again.model_status() == status
    assert again.selector.predictions == predictions
    assert np.array_equal(again.selector.head.scores, scores)


def test_deleting_a_project_removes_its_model_files(tmp_path):
    from ranker.attached import features_path, snapshot_path

    studio, project = _project(tmp_path)
    emb, quality = _truth()
    project.attach_model(INFO, *_features(project, emb, quality))
    _vote_truthfully(project, quality, 30)  # past a refit point: a snapshot file is written
    pid = project.row.id
    features, snapshot = (
        features_path(studio.store.path, pid),
        snapshot_path(studio.store.path, pid),
    )
    assert features.exists() and snapshot.exists()
    studio.delete_project("p")
    assert not features.exists() and not snapshot.exists()
