"""The Ranking API through gradio_client against a launched app, as a script would use it."""

from __future__ import annotations

import json
import zipfile

import pytest
from gradio_client import Client, handle_file

from tests.conftest import launch_app
from tests.ui.helpers import make_context, make_images, make_project

TOKEN = "owner-token"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One launched app for the module; each test uses its own project names."""
    ctx = make_context(tmp_path_factory.mktemp("api"), admin_token=TOKEN)
    demo, url = launch_app(ctx)
    yield Client(url, verbose=False), ctx
    demo.close()


def test_create_vote_undo_skip_leaderboard_export(client, tmp_path):
    c, ctx = client
    images = make_images(tmp_path / "upload", 5)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in make_images(tmp_path / "zipped", 8)[5:]:
            zf.write(p, f"inner/{p.name}")
    files = [handle_file(str(p)) for p in [*images, archive]]
    summary = c.predict(
        "api", "Which is sharper?", files, admin_token=TOKEN, api_name="/create_project"
    )
    assert summary.startswith("8 images added")
    projects = c.predict(api_name="/list_projects")
    assert ("api", 8, 0) in [(p["name"], p["images"], p["votes"]) for p in projects]

    joined = c.predict("api", "bot", api_name="/join")
    assert joined["labeler"] == "bot" and joined["key"].startswith("lk1.")
    bot = joined["key"]
    pair = c.predict("api", bot, api_name="/next_pair")
    assert pair["instruction"] == "Which is sharper?" and pair["left"]["url"]
    nxt = c.predict("api", bot, pair["pair_id"], "left", api_name="/vote")
    assert nxt["progress"]["votes"] == 1 and nxt["pair_id"] != pair["pair_id"]
    again = c.predict("api", bot, pair["pair_id"], "left", api_name="/vote")
    assert again["progress"]["votes"] == 1 and "counts once" in again["message"]
    after_skip = c.predict("api", bot, nxt["pair_id"], api_name="/skip")
    c.predict("api", bot, after_skip["pair_id"], "tie", api_name="/vote")
    undone = c.predict("api", bot, api_name="/undo")
    assert undone["progress"]["votes"] == 1 and undone["message"].startswith("Undid")
    sides = [(p["left"]["uid"], p["right"]["uid"]) for p in (undone, after_skip)]
    assert sides[0] == sides[1]  # the undone pair, back to answer again

    board = c.predict("api", api_name="/leaderboard")
    assert len(board) == 8 and sum(r["comparisons"] for r in board) == 2
    assert board[0]["wins"] == 1 and "path" not in board[0]

    doc = json.loads(c.predict("api", "json", TOKEN, api_name="/export"))
    assert [(v["outcome"], v["labeler"]) for v in doc["votes"]] == [("left", "bot")]
    ir = c.predict("api", "image_ranker_comparisons", TOKEN, api_name="/export")
    assert ir.splitlines()[0] == "Winner,Loser" and len(ir.splitlines()) == 2


def test_owner_actions_need_the_token(client, tmp_path):
    c, _ = client
    files = [handle_file(str(p)) for p in make_images(tmp_path / "u", 2)]
    with pytest.raises(Exception, match="admin token"):
        c.predict("nope", "", files, api_name="/create_project")
    c.predict("ok", "", files, admin_token=TOKEN, api_name="/create_project")
    with pytest.raises(Exception, match="admin token"):
        c.predict("ok", "json", "wrong", api_name="/export")
    key = c.predict("ok", "anyone", api_name="/join")["key"]  # labeling stays open
    pair = c.predict("ok", key, api_name="/next_pair")
    assert pair["pair_id"]


def test_clear_errors(client, tmp_path):
    c, ctx = client
    make_project(ctx, "errs", tmp_path / "imgs", n=3)
    with pytest.raises(Exception, match="no project named 'missing'"):
        c.predict("missing", "bot", TOKEN, api_name="/next_pair")
    with pytest.raises(Exception, match="no '#'"):
        c.predict("errs", "bot#next", TOKEN, api_name="/next_pair")
    with pytest.raises(Exception, match="key from /join"):
        c.predict("errs", "bot", api_name="/next_pair")  # a free name is no identity
