import threading
import time

import numpy as np
import pytest

from ranker.errors import DuplicateVoteError, StudioError, UnknownImageError, UnknownPairError
from ranker.ratings import Ratings
from ranker.service import OPEN_PAIR_MAX_AGE, OPEN_PAIR_SWEEP_EVERY, Studio
from ranker.store import Assignment

from .helpers import make_images


@pytest.fixture
def studio(tmp_path):
    s = Studio(tmp_path / "db" / "studio.db")
    yield s
    s.close()


@pytest.fixture
def project(studio, tmp_path):
    p = studio.create_project("demo", strategy="random")
    p.add_folder(make_images(tmp_path / "imgs", 8)[0].parent)
    return p


def _vote_n(project, n, labeler="alice", outcomes=("left", "right", "tie")):
    for k in range(n):
        pair = project.next_pair(labeler)
        project.vote(pair.pair_id, outcomes[k % len(outcomes)], labeler, response_ms=120.0)


def _replayed(project):
    return Ratings.replay(
        len(project.images), project._as_indices(project.votes()), project.rating_config
    )


def test_vote_is_durable_and_incremental_equals_replay(project, tmp_path):
    _vote_n(project, 30)
    full = _replayed(project)
    assert np.array_equal(project.ratings.pool.mu, full.pool.mu)
    assert np.array_equal(project.ratings.pool.sigma, full.pool.sigma)
    reopened = Studio(tmp_path / "db" / "studio.db").project("demo")
    assert np.array_equal(reopened.ratings.pool.mu, project.ratings.pool.mu)
    board = project.leaderboard("conservative")
    assert sum(r["comparisons"] for r in board) == 60
    assert [r["conservative"] for r in board] == sorted(
        (r["conservative"] for r in board), reverse=True
    )


def test_double_answer_counts_once(project):
    pair = project.next_pair("alice")
    project.vote(pair.pair_id, "left", "alice")
    with pytest.raises(DuplicateVoteError, match="already answered"):
        project.vote(pair.pair_id, "left", "alice")
    with pytest.raises(UnknownPairError, match="not open"):
        project.vote("no-such-pair", "left", "alice")
    with pytest.raises(StudioError, match="outcome"):
        project.vote(project.next_pair("alice").pair_id, "both", "alice")
    assert project.progress().votes == 1


def test_same_pair_after_refresh_and_restart(project, tmp_path):
    first = project.next_pair("alice")
    assert project.next_pair("alice").pair_id == first.pair_id
    restarted = Studio(tmp_path / "db" / "studio.db").project("demo")
    again = restarted.next_pair("alice")
    assert (again.pair_id, again.left.uid, again.right.uid) == (
        first.pair_id,
        first.left.uid,
        first.right.uid,
    )
    restarted.vote(again.pair_id, "right", "alice")
    assert restarted.progress().votes == 1


def test_concurrent_labelers_get_different_pairs(project):
    pairs = [project.next_pair(f"user{i}") for i in range(4)]
    keys = {frozenset((p.left.uid, p.right.uid)) for p in pairs}
    assert len(keys) == 4


def test_undo_restores_exact_ratings(project):
    _vote_n(project, 10)
    mu, sigma = project.ratings.pool.mu.copy(), project.ratings.pool.sigma.copy()
    _vote_n(project, 1)
    undone = project.undo("alice")
    assert undone is not None
    assert np.array_equal(project.ratings.pool.mu, mu)
    assert np.array_equal(project.ratings.pool.sigma, sigma)
    assert len(project.votes(include_undone=True)) == 11  # marked, never deleted
    assert project.votes(include_undone=True)[-1].undone


def test_undo_of_an_older_vote_equals_replay(project):
    _vote_n(project, 5, "alice")
    _vote_n(project, 5, "bob")
    project.undo("alice")
    full = _replayed(project)
    assert np.array_equal(project.ratings.pool.mu, full.pool.mu)
    assert np.array_equal(project.ratings.pool.sigma, full.pool.sigma)
    assert project.undo("nobody") is None


def test_undo_hands_the_undone_pair_back_to_answer_again(project):
    shown = project.next_pair("alice")
    project.vote(shown.pair_id, "left", "alice")
    after = project.next_pair("alice")
    project.undo("alice")
    back = project.next_pair("alice")
    assert (back.left.uid, back.right.uid) == (shown.left.uid, shown.right.uid)  # same sides
    assert back.pair_id not in (shown.pair_id, after.pair_id)  # a fresh id to answer
    project.vote(back.pair_id, "right", "alice")
    assert [v.outcome for v in project.votes()] == ["right"]
    assert project.next_pair("alice").pair_id != back.pair_id
    with pytest.raises(UnknownPairError):  # the pair it replaced is no longer open
        project.vote(after.pair_id, "left", "alice")


def test_undone_pair_is_shown_before_look_ahead_pairs(project):
    """Open pairs in alice's look-ahead slot 1 were issued earlier; the undone pair must
    still come first in issue order, so a look-ahead client shows it now."""
    ahead = project.next_pair("alice", slot=1)
    shown = project.next_pair("alice")
    project.vote(shown.pair_id, "tie", "alice")
    project.undo("alice")
    held = project.store.assignments(project.row.id)
    now, later = held[("alice", 0)], held[("alice", 1)]
    assert now.issued_at < later.issued_at
    assert later.pair_id == ahead.pair_id
    assert (now.left_uid, now.right_uid) == (shown.left.uid, shown.right.uid)
    pairs, _ = project.lookahead("alice")
    assert pairs[0].pair_id == now.pair_id and pairs[1].pair_id == ahead.pair_id


def test_undo_of_a_vote_on_an_excluded_image_opens_no_pair(project):
    shown = project.next_pair("alice")
    project.vote(shown.pair_id, "left", "alice")
    project.set_excluded(shown.left.uid, True)
    project.undo("alice")
    back = project.next_pair("alice")
    assert shown.left.uid not in (back.left.uid, back.right.uid)


def test_skip_and_exclusion(project):
    pair = project.next_pair("alice")
    project.skip(pair.pair_id, "alice")
    assert project.next_pair("alice").pair_id != pair.pair_id
    with pytest.raises(DuplicateVoteError):
        project.skip(pair.pair_id, "alice")
    uid = project.images[0].uid
    project.set_excluded(uid, True, "blurry")
    for _ in range(20):
        p = project.next_pair("alice")
        assert uid not in (p.left.uid, p.right.uid)
        project.vote(p.pair_id, "left", "alice")
    row = next(r for r in project.leaderboard() if r["uid"] == uid)
    assert row["excluded"] and row["exclusion_reason"] == "blurry" and row["rank"] == 8
    with pytest.raises(UnknownImageError, match="no image 'nope'"):
        project.set_excluded("nope", True)


def test_sixteen_threads_lose_and_duplicate_nothing(project):
    acknowledged: list[int] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def labeler(k: int) -> None:
        try:
            for _ in range(15):
                pair = project.next_pair(f"t{k}")
                vote_id = project.vote(pair.pair_id, "left", f"t{k}")
                with lock:
                    acknowledged.append(vote_id)
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=labeler, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = [v.id for v in project.votes()]
    assert sorted(acknowledged) == stored and len(set(stored)) == 16 * 15
    assert project.ratings.pool.n_votes == 16 * 15
    full = _replayed(project)
    assert np.array_equal(project.ratings.pool.mu, full.pool.mu)


def test_moved_folder_keeps_history(studio, tmp_path):
    project = studio.create_project("moving", strategy="random")
    old = tmp_path / "old"
    project.add_folder(make_images(old, 4)[0].parent)
    _vote_n(project, 6)
    before = project.leaderboard()
    old.rename(tmp_path / "new")
    report = project.add_folder(tmp_path / "new")
    assert len(report.accepted) == 4 and not report.duplicates
    assert len(project.images) == 4
    assert all(img.path.startswith(str(tmp_path / "new")) for img in project.images)
    after = project.leaderboard()
    assert [(r["uid"], r["mu"]) for r in after] == [(r["uid"], r["mu"]) for r in before]


def test_settings_validation_and_unknown_project(studio, project):
    with pytest.raises(StudioError, match="already exists"):
        studio.create_project("demo")
    with pytest.raises(StudioError, match="no project named 'nope'"):
        studio.project("nope")
    with pytest.raises(ValueError, match="unknown rating preset"):
        project.update(rating_preset="elo")
    with pytest.raises(StudioError, match="unknown project settings: colour"):
        project.update(colour="red")
    project.update(instruction="Which is sharper?", strategy="smart_shuffle")
    assert project.settings["strategy"] == "smart_shuffle"
    assert project.next_pair("alice").instruction == "Which is sharper?"


def test_pre_rank_seeds_ratings_and_survives_restart(project, tmp_path):
    uids = [img.uid for img in project.images]
    scores = {uid: float(k) for k, uid in enumerate(uids)}
    assert project.pre_rank(scores, agreement=0.75) == 8
    mu = project.ratings.pool.mu
    assert np.all(np.diff(mu) > 0) and np.all(project.ratings.pool.sigma < 8.33)
    _vote_n(project, 5)
    reopened = Studio(tmp_path / "db" / "studio.db").project("demo")
    assert np.array_equal(reopened.ratings.pool.mu, project.ratings.pool.mu)
    with pytest.raises(UnknownImageError):
        project.pre_rank({"nope": 1.0})
    with pytest.raises(StudioError, match="agreement"):
        project.pre_rank(scores, agreement=1.0)
    project.clear_pre_rank()
    assert np.array_equal(project.ratings.pool.mu, _replayed(project).pool.mu)


def test_stale_open_pairs_are_deleted_when_the_project_loads(project, tmp_path):
    ghost, alice = project.next_pair("ghost"), project.next_pair("alice")
    old = time.time() - OPEN_PAIR_MAX_AGE - 60  # a visitor who left yesterday
    project.store.assign(
        project.row.id, "ghost", Assignment(ghost.pair_id, ghost.left.uid, ghost.right.uid, old)
    )
    reopened = Studio(tmp_path / "db" / "studio.db").project("demo")
    assert set(reopened.store.assignments(reopened.row.id)) == {("alice", 0)}
    with pytest.raises(UnknownPairError, match="ask for the next pair"):
        reopened.vote(ghost.pair_id, "left", "ghost")
    reopened.vote(reopened.next_pair("ghost").pair_id, "left", "ghost")
    reopened.vote(alice.pair_id, "right", "alice")
    assert reopened.progress().votes == 2


def test_open_pairs_are_swept_at_most_once_per_interval(project):
    start = time.time()
    now = [start + 10]
    project.clock = lambda: now[0]
    ghost = project.next_pair("ghost")  # issued at start + 10
    now[0] = start + 20
    bob = project.next_pair("bob")
    now[0] = start + 15 + OPEN_PAIR_MAX_AGE  # ghost's pair is too old, bob's is not yet
    project.next_pair("carol")  # first call after the load's sweep interval: sweeps
    assert set(project.store.assignments(project.row.id)) == {("bob", 0), ("carol", 0)}
    now[0] += OPEN_PAIR_SWEEP_EVERY / 2  # bob's pair is too old now, but no sweep is due
    project.next_pair("carol")
    assert ("bob", 0) in project.store.assignments(project.row.id)
    now[0] += OPEN_PAIR_SWEEP_EVERY / 2
    project.next_pair("carol")
    assert set(project.store.assignments(project.row.id)) == {("carol", 0)}
    for labeler, pair in (("ghost", ghost), ("bob", bob)):
        with pytest.raises(UnknownPairError, match="ask for the next pair"):
            project.vote(pair.pair_id, "left", labeler)
    assert project.progress().votes == 0


def test_an_expired_pair_is_not_handed_out_again(project):
    first = project.next_pair("alice")
    issued = project.store.assignments(project.row.id)[("alice", 0)].issued_at
    project.clock = lambda: issued + OPEN_PAIR_MAX_AGE - 1
    assert project.next_pair("alice").pair_id == first.pair_id
    project.clock = lambda: issued + OPEN_PAIR_MAX_AGE
    assert project.next_pair("alice").pair_id != first.pair_id


def test_auto_order_is_the_strategys_own_ranking(studio, tmp_path):
    project = studio.create_project("sorted", strategy="active")
    project.add_folder(make_images(tmp_path / "sorted", 12)[0].parent)
    truth = {img.uid: k for k, img in enumerate(project.images)}  # higher index is better
    for _ in range(5 * 12):  # a consistent labeler: active sorts
        pair = project.next_pair("alice")
        left_wins = truth[pair.left.uid] > truth[pair.right.uid]
        project.vote(pair.pair_id, "left" if left_wins else "right", "alice")
    assert project.selector.sorting
    auto = [row["uid"] for row in project.leaderboard("auto")]
    assert auto == sorted(truth, key=truth.get, reverse=True)  # the exact order
    by_mu = [row["uid"] for row in project.leaderboard("mu")]
    assert by_mu != auto  # TrueSkill mu alone does not recover it from these votes
    random_project = studio.create_project("shuffled", strategy="random")
    random_project.add_folder(make_images(tmp_path / "shuffled", 4)[0].parent)
    _vote_n(random_project, 5)
    assert random_project.leaderboard("auto") == random_project.leaderboard("mu")
    with pytest.raises(StudioError, match="auto, conservative, mu, refit"):
        project.leaderboard("best")


def test_look_ahead_is_part_of_the_service(project):
    """Every caller (page, API, CLI) gets the same look-ahead: distinct pairs per slot,
    oldest first, the voted one replaced, all of it back after a restart."""
    pairs, missing = project.lookahead("alice", fill=2)
    assert (len(pairs), missing) == (2, 1)
    pairs, missing = project.lookahead("alice")
    assert (len(pairs), missing) == (3, 0)
    assert len({frozenset((m.left.uid, m.right.uid)) for m in pairs}) == 3
    project.vote(pairs[0].pair_id, "left", "alice")
    after, _ = project.lookahead("alice", fill=2)
    assert [m.pair_id for m in after] == [pairs[1].pair_id, pairs[2].pair_id]
    bob, _ = project.lookahead("bob")
    taken = {frozenset((m.left.uid, m.right.uid)) for m in after}
    assert not taken & {frozenset((m.left.uid, m.right.uid)) for m in bob}
    with pytest.raises(StudioError, match="slot must be 0..2"):
        project.next_pair("alice", slot=3)
