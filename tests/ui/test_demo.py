"""The demo project: generated images with a known order, created once."""

from __future__ import annotations

import pytest

from ui.context import StudioContext
from ui.demo import (
    DEMO_PROJECT,
    ensure_demo_project,
    kendall_tau_vs_truth,
    known_levels,
)


def test_demo_project_is_created_once_with_known_order(tmp_path):
    ctx = StudioContext(data_dir=tmp_path)
    ensure_demo_project(ctx)
    ensure_demo_project(ctx)
    assert [p.name for p in ctx.studio.list_projects()] == [DEMO_PROJECT]
    project = ctx.studio.project(DEMO_PROJECT)
    levels = known_levels(ctx)
    assert len(project.images) == 27 == len(levels)
    assert sorted(levels.values()).count(0) == 3  # one clean picture per scene
    assert all(img.context and "Scene" in img.context for img in project.images)
    total = sum(p.stat().st_size for p in (tmp_path / "demo" / "images").iterdir())
    assert total < 2_000_000


def test_tau_against_known_levels():
    from scipy.stats import kendalltau

    levels = {"a": 0, "b": 1, "c": 2, "d": 2, "e": 0}
    for order in (["a", "e", "b", "c", "d"], ["d", "a", "c", "e", "b"], ["d", "c", "b", "a", "e"]):
        expected = kendalltau(range(5), [levels[n] for n in order]).statistic
        assert kendall_tau_vs_truth(order, levels) == pytest.approx(expected)
    assert kendall_tau_vs_truth(["a", "b", "c"], {"a": 0, "b": 1, "c": 2}) == pytest.approx(1.0)
    assert kendall_tau_vs_truth(["a", "b"], levels) is None


def test_progress_line_explains_confidence_and_scores_the_leaderboard_order(tmp_path):
    """One tau: the one of the order the leaderboard opens with, not another order."""
    from ui.ranking.desk import RankingDesk
    from ui.ranking.panels import DEFAULT_ORDER
    from ui.ranking.tab import progress_line
    from ui.ranking.view import CONFIDENCE_HELP

    ctx = StudioContext(data_dir=tmp_path)
    ensure_demo_project(ctx)
    desk = RankingDesk(ctx)
    project = ctx.studio.project(DEMO_PROJECT)
    first = progress_line(ctx, desk, DEMO_PROJECT)
    assert "ranking confidence 50%" in first and CONFIDENCE_HELP in first
    assert "Kendall" not in first  # no votes, no order to score
    levels = known_levels(ctx)
    for _ in range(40):  # a labeler who follows the known order (ties as ties)
        pair = project.next_pair("ann")
        a, b = levels[pair.left.name], levels[pair.right.name]
        project.vote(pair.pair_id, "left" if a < b else "right" if b < a else "tie", "ann")

    def tau(order: str) -> float:
        names = [project.image(r["uid"]).name for r in project.leaderboard(order)]
        return kendall_tau_vs_truth(names, levels)

    assert f"{tau('conservative'):.2f}" != f"{tau(DEFAULT_ORDER):.2f}"  # the orders differ here
    assert f"Kendall tau {tau(DEFAULT_ORDER):.2f}" in progress_line(ctx, desk, DEMO_PROJECT)
