"""One leaderboard order everywhere: every route that shows or writes a ranking, asked
on the same project, gives the order of ``ranker.results.default_order``."""

from __future__ import annotations

import csv
import io
import json

from gradio_client import Client

from prefdata import imageranker_csv, project_json
from prefdata.tables import build_tables
from ranker import cli
from ranker.results import DEFAULT_ORDER, default_order
from tests.conftest import launch_app
from tests.ui.helpers import make_context, make_project


def test_every_route_gives_the_default_order(tmp_path, capsys):
    ctx = make_context(tmp_path, admin_token="t")
    project = make_project(ctx, "order", tmp_path / "imgs", n=12, strategy="active")
    truth = {img.uid: k for k, img in enumerate(project.images)}
    for _ in range(3 * 12):  # a consistent labeler: active sorts
        pair = project.next_pair("alice")
        left_wins = truth[pair.left.uid] > truth[pair.right.uid]
        project.vote(pair.pair_id, "left" if left_wins else "right", "alice")
    expected = [r["uid"] for r in project.leaderboard(default_order())]
    assert DEFAULT_ORDER == "auto" and expected == [r["uid"] for r in project.leaderboard()]
    assert expected != [r["uid"] for r in project.leaderboard("conservative")]  # it matters
    path_to_uid = {img.path: img.uid for img in project.images}

    routes = {
        "json export": [
            r["uid"] for r in json.loads(project_json.export_json(project))["leaderboard"]
        ],
        "csv export": [
            r["uid"] for r in csv.DictReader(io.StringIO(project_json.export_csv(project)))
        ],
    }
    images = build_tables(project).images
    routes["dataset images table"] = [r["uid"] for r in sorted(images, key=lambda r: r["rank"])]
    db = str(ctx.studio.store.path)
    capsys.readouterr()
    cli.main(["--db", db, "leaderboard", "order", "--top", "12"])
    lines = capsys.readouterr().out.splitlines()[1:]
    routes["CLI leaderboard"] = [path_to_uid[line.split("\t")[-1]] for line in lines]
    cli.main(["--db", db, "export", "order", "--format", "csv"])
    rows = csv.DictReader(io.StringIO(capsys.readouterr().out))
    routes["CLI export"] = [r["uid"] for r in rows]
    demo, url = launch_app(ctx)
    try:
        board = Client(url, verbose=False).predict("order", api_name="/leaderboard")
        routes["HTTP /leaderboard"] = [r["uid"] for r in board]
        radios = [
            c["props"] for c in demo.config["components"] if c["props"].get("label") == "Order by"
        ]
        assert [r["value"] for r in radios] == [DEFAULT_ORDER]  # the Ranking tab's default
    finally:
        demo.close()
    for route, order in routes.items():
        assert order == expected, route
    # Image Ranker's own format keeps its meaning: ranked by mu
    ir = imageranker_csv.export_ir_rankings(project).splitlines()[1:]
    by_mu = [r["uid"] for r in project.leaderboard("mu")]
    shown_to_uid = {
        imageranker_csv.shown_paths(project)[path]: uid for path, uid in path_to_uid.items()
    }
    assert [shown_to_uid[line.split(",")[0]] for line in ir] == by_mu
