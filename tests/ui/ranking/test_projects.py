"""Project actions shared by page and API: sources, settings, exports, progress curve."""

from __future__ import annotations

import json
import sys
import types

import pytest

from ranker.errors import StudioError
from tests.ui.helpers import make_context, make_images, make_project
from ui.ranking.desk import RankingDesk
from ui.ranking.progress import confidence_series
from ui.ranking.projects import (
    create_project,
    exclusion_reasons,
    export_project,
    parse_reasons,
    parse_settings,
)


def test_local_folder_only_inside_allowed_roots(tmp_path):
    make_images(tmp_path / "root" / "set", 3)
    make_images(tmp_path / "elsewhere", 3)
    ctx = make_context(tmp_path, roots=[tmp_path / "root"])
    assert create_project(ctx, "ok", folder=str(tmp_path / "root" / "set")).startswith("3 images")
    for bad in (str(tmp_path / "elsewhere"), str(tmp_path / "root" / ".." / "elsewhere"), "/etc"):
        with pytest.raises(StudioError, match="outside the folders"):
            create_project(ctx, "bad", folder=bad)
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StudioError, match="outside the folders"):
        create_project(ctx, "bad", folder=str(tmp_path / "root" / "link"))
    closed = make_context(tmp_path / "space", on_space=True)
    with pytest.raises(StudioError, match="local folders are off"):
        create_project(closed, "x", folder=str(tmp_path / "root" / "set"))
    assert [p.name for p in ctx.studio.list_projects()] == ["ok"]


def test_project_without_readable_images_is_not_kept(tmp_path):
    ctx = make_context(tmp_path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(StudioError, match="(?s)no readable images.*junk.png: not an image"):
        create_project(ctx, "empty", files=[str(junk)])
    assert ctx.studio.list_projects() == [] and not list(ctx.uploads_dir.iterdir())


def test_hub_dataset_offline_gives_a_clear_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'user/set' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    ctx = make_context(tmp_path)
    with pytest.raises(StudioError, match="could not load dataset 'user/set'.*online"):
        create_project(ctx, "hub", dataset_id="user/set")
    with pytest.raises(StudioError, match="not a dataset id"):
        create_project(ctx, "hub", dataset_id="../../etc")
    assert ctx.studio.list_projects() == []


def test_settings_and_reasons(tmp_path):
    assert parse_settings("random", 0, "trueskill", 0.3, "a: Blurry\nb") == {
        "strategy": "random",
        "budget": None,
        "rating_preset": "trueskill",
        "random_share": 0.3,
        "exclusion_reasons": {"a": "Blurry", "b": "b"},
    }
    assert parse_reasons('{"x": "X"}') == {"x": "X"}
    with pytest.raises(StudioError):
        parse_settings(budget=-1)
    with pytest.raises(StudioError):
        parse_settings(random_share=2)
    reasons = tmp_path / "reasons.json"
    reasons.write_text(json.dumps({"blurry": "Blurry image"}))
    ctx = make_context(tmp_path)
    ctx.exclusion_reasons_file = reasons
    project = make_project(ctx, "p", tmp_path / "imgs", n=3)
    assert exclusion_reasons(ctx, project) == {"blurry": "Blurry image"}
    project.update(exclusion_reasons={"dup": "Duplicate"})
    assert exclusion_reasons(ctx, project) == {"dup": "Duplicate"}


def test_exclusion_replaces_the_pair_and_export_lands_in_a_private_folder(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=5)
    desk = RankingDesk(ctx)
    v = desk.view("p", "ann")
    after = desk.exclude("p", "ann", v.left.uid, "blurry")
    assert after.pair_id != v.pair_id and v.left.uid not in (after.left.uid, after.right.uid)
    text, path = export_project(ctx, ctx.studio.project("p"), "csv")
    assert path.read_text() == text and "blurry" in text
    assert path.parent.parent == ctx.exports_dir and len(path.parent.name) == 32


def test_confidence_curve_ends_at_the_engine_value(tmp_path):
    ctx = make_context(tmp_path)
    make_project(ctx, "p", tmp_path / "imgs", n=6)
    desk = RankingDesk(ctx)
    v = desk.view("p", "ann")
    for outcome in ["left", "right", "tie", "left", "left"]:
        v = desk.vote("p", "ann", v.pair_id, outcome)
    project = ctx.studio.project("p")
    series = confidence_series(project, project.votes())
    assert series[0][0] == 0 and series[-1][0] == 5
    assert series[-1][1] == pytest.approx(project.progress().confidence)
