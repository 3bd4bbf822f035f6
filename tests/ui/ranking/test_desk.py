"""The labeling desk: look-ahead pairs, one answer per pair, restart, several labelers."""

from __future__ import annotations

import time
from types import SimpleNamespace

from ranker.service import OPEN_PAIR_MAX_AGE
from tests.ui.helpers import corrupt, make_context, make_project
from ui.context import StudioContext
from ui.ranking import desk as ranking_core
from ui.ranking.desk import RankingDesk


def test_vote_returns_the_preloaded_pair_and_counts_once(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=8)
    desk = RankingDesk(ctx)
    first = desk.view("p", "ann")
    assert first.left.url and first.right.url and len(first.prefetch) == 2
    desk.flush()  # the third slot is filled in the background
    assert len(desk.view("p", "ann").prefetch) == 4
    second = desk.vote("p", "ann", first.pair_id, "left")
    assert second.pair_id != first.pair_id
    assert [second.left.url, second.right.url] == first.prefetch  # already in the browser
    again = desk.vote("p", "ann", first.pair_id, "right")  # a double press
    assert "counts once" in again.message and again.pair_id == second.pair_id
    votes = ctx.studio.project("p").votes()
    assert len(votes) == 1 and votes[0].labeler == "ann" and votes[0].outcome == "left"


def test_refresh_and_restart_show_the_same_pairs(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=8)
    desk = RankingDesk(ctx)
    desk.view("p", "ann")
    desk.flush()
    before = desk.view("p", "ann")
    assert desk.view("p", "ann").pair_id == before.pair_id  # page refresh
    restarted = RankingDesk(StudioContext(data_dir=ctx.data_dir, sound_enabled=False))
    after = restarted.view("p", "ann")
    assert (after.pair_id, after.prefetch) == (before.pair_id, before.prefetch)
    restarted.vote("p", "ann", after.pair_id, "tie")
    assert restarted.ctx.studio.project("p").progress().votes == 1


def test_concurrent_labelers_get_different_pairs(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=12)
    desk = RankingDesk(ctx)
    seen = set()
    for who in ("a", "b", "c"):
        desk.view("p", who)
        desk.flush()
        v = desk.view("p", who)
        pairs = [(v.left.url, v.right.url), *zip(v.prefetch[::2], v.prefetch[1::2], strict=True)]
        assert len(pairs) == 3
        for pair in pairs:
            key = frozenset(pair)
            assert key not in seen
            seen.add(key)


def test_skip_and_undo(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=6)
    desk = RankingDesk(ctx)
    v = desk.view("p", "ann")
    assert desk.undo("p", "ann").message == "Nothing to undo."
    v2 = desk.skip("p", "ann", v.pair_id)
    assert v2.pair_id != v.pair_id and v2.message == "Skipped."
    v3 = desk.vote("p", "ann", v2.pair_id, "right")
    v4 = desk.undo("p", "ann")
    assert v4.message.startswith("Undid your vote")
    assert (v4.left.uid, v4.right.uid) == (v2.left.uid, v2.right.uid)  # back to answer again
    assert v4.pair_id not in (v2.pair_id, v3.pair_id)
    project = ctx.studio.project("p")
    assert project.progress().votes == 0 and len(project.votes(include_undone=True)) == 1
    assert RankingDesk(ctx).view("p", "ann").pair_id == v4.pair_id  # kept over a restart
    v5 = desk.vote("p", "ann", v4.pair_id, "left")
    assert v5.message == "" and v5.pair_id != v4.pair_id
    assert [v.outcome for v in project.votes()] == ["left"]


def test_corrupt_original_gives_a_message_not_a_crash(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=2)
    corrupt(tmp_path / "imgs" / "img000.png")
    view = RankingDesk(ctx).view("p", "ann")
    bad = [s for s in (view.left, view.right) if s.url is None]
    assert len(bad) == 1 and "img000.png: corrupt or unreadable" in bad[0].error


def test_a_pair_answered_elsewhere_is_not_shown_again(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=8)
    desk = RankingDesk(ctx)
    anns = desk.view("p", "ann")
    forged = desk.vote("p", "script", anns.pair_id, "left")  # someone else names ann's pair
    assert "no longer open" in forged.message and forged.pair_id != anns.pair_id
    assert ctx.studio.project("p").progress().votes == 0
    assert desk.view("p", "ann").pair_id == anns.pair_id  # ann's pair is untouched
    desk.vote("p", "ann", anns.pair_id, "left")  # ann answers in her other tab
    again = desk.view("p", "ann")
    assert again.pair_id != anns.pair_id
    refused = desk.vote("p", "ann", anns.pair_id, "right")  # her late key press
    assert "counts once" in refused.message
    assert ctx.studio.project("p").progress().votes == 1
    desk.flush()
    ctx.studio.delete_project("p")
    desk.forget("p")
    make_project(ctx, "p", tmp_path / "imgs2", n=4)
    fresh = desk.view("p", "ann")
    assert fresh.pair_id and {fresh.left.name, fresh.right.name} <= {
        f"img{i:03d}.png" for i in range(4)
    }


def test_a_labeler_back_after_the_open_pair_limit_gets_fresh_pairs(tmp_path, monkeypatch):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=8)
    desk = RankingDesk(ctx)
    session = ctx.studio.project("p")

    def open_pair_ids() -> set[str]:
        return {a.pair_id for a in session.store.assignments(session.row.id).values()}

    before = desk.view("p", "ann")
    desk.flush()
    old = open_pair_ids()
    assert len(old) == 3  # current pair and two look-ahead pairs
    later = time.time() + OPEN_PAIR_MAX_AGE + 1  # the tab was left open overnight
    session.clock = lambda: later
    monkeypatch.setattr(ranking_core, "time", SimpleNamespace(time=lambda: later))
    after = desk.view("p", "ann")
    desk.flush()
    assert after.pair_id not in old and not old & open_pair_ids()
    late = desk.vote("p", "ann", before.pair_id, "left")  # the old page's key press
    assert "no longer open" in late.message and late.pair_id == after.pair_id
    assert desk.vote("p", "ann", after.pair_id, "left").message == ""
    assert ctx.studio.project("p").progress().votes == 1


def test_per_labeler_locks_do_not_outlive_their_requests(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=6)
    desk = RankingDesk(ctx)
    for k in range(50):  # fifty one-time visitors
        desk.view("p", f"visitor{k}")
    desk.flush()
    assert desk._locks == {}  # the map holds only requests in flight
    ctx.studio.delete_project("p")
