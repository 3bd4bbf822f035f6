"""The Scoring tab through a launched app and gradio_client, with a tiny saved model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from gradio_client import Client, handle_file

from model.joyquality import build_tiny_model
from tests.conftest import launch_app
from tests.model.helpers import make_image
from tests.ui.helpers import make_context, make_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoring-tab")
    ctx = make_context(tmp, roots=[tmp / "local"])
    run_model = ctx.runs_dir / "my-run" / "final"
    build_tiny_model(seed=2).save_pretrained(run_model)
    make_project(ctx, "cats", tmp / "cats", n=6)
    demo, url = launch_app(ctx, tabs=("Scoring",))
    yield Client(url, verbose=False), ctx, tmp, str(run_model)
    demo.close()


def _uploads(tmp: Path) -> list:
    images = [make_image(tmp / "up" / f"u{i}.png", seed=i) for i in range(4)]
    archive = tmp / "up" / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.write(make_image(tmp / "z" / f"z{i}.jpg", seed=10 + i), f"inner/z{i}.jpg")
        zf.writestr("inner/broken.jpg", b"\xff\xd8\xff garbage")
        zf.writestr("__MACOSX/._z0.jpg", b"metadata")
    notes = tmp / "up" / "notes.txt"
    notes.write_text("not an image")
    return [handle_file(str(p)) for p in [*images, archive, notes]]


def test_named_endpoints(app):
    client, *_ = app
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {
        "/score",
        "/bucket",
        "/compare",
        "/prerank",
        "/bucket_scores",
        "/scoring_models",
    } <= names


def test_models_list_the_training_run(app):
    client, ctx, tmp, run_model = app
    offered = client.predict(api_name="/scoring_models")
    assert "run: my-run" in offered  # by name: the list shows no server folder
    assert not any(str(ctx.data_dir) in name for name in offered)
    # The name and the run's folder both score with the run's model.
    for source in ("run: my-run", run_model):
        rows = client.predict(
            [handle_file(str(make_image(tmp / "one" / "a.png", seed=1)))], "", source,
            "equal width (method A)", "", None, api_name="/score",
        )  # fmt: skip
        assert "Scored **1** of 1 images" in rows[0]


def test_score_uploads_and_zip_then_rebucket(app):
    client, _, tmp, run_model = app
    summary, gallery, hist, table, files = client.predict(
        _uploads(tmp), "", run_model, "equal width (method A)", "", None, api_name="/score"
    )
    assert "Scored **7** of 9 images" in summary and "2 unreadable" in summary
    assert "batch.zip/inner/broken.jpg" in summary and "notes.txt" in summary
    assert len(gallery) == 7 and all(" · " in g["caption"] for g in gallery)
    captions = [float(g["caption"].split(" · ")[0]) for g in gallery]
    assert captions == sorted(captions, reverse=True)
    # The histogram is a Gradio bar plot: one bar per bin, coloured by bucket, all 7 counted.
    bars = hist["value"]
    assert bars["columns"] == ["score", "images", "bucket"]
    assert sum(row[1] for row in bars["data"]) == 7
    assert {row[2] for row in bars["data"]} <= {"worst quality", "low quality",
                                                "average quality", "high quality", "best quality"}  # fmt: skip
    assert len(table["data"]) == 9
    scores = [row[1] for row in table["data"] if row[3] in (None, "")]
    assert all(s == round(s, 4) for s in scores)  # rounded for the page, not 17 digits
    parquet = next(f for f in files if f.endswith(".parquet"))
    assert pq.read_table(parquet).num_rows == 9

    summary, _, _, table, _ = client.predict(
        run_model, "quantile", "bad, good", None, api_name="/bucket"
    )
    buckets = [row[2] for row in table["data"] if row[3] in (None, "")]
    assert sorted(set(buckets)) == ["bad", "good"] and buckets.count("bad") in (3, 4)


def test_local_folder_is_limited_to_allowed_roots(app):
    client, _, tmp, run_model = app
    for i in range(3):
        make_image(tmp / "local" / "set" / f"l{i}.png", seed=30 + i)
    summary, *_ = client.predict(
        [], str(tmp / "local" / "set"), run_model, "quantile", "", None, api_name="/score"
    )
    assert "Scored **3** of 3 images" in summary
    with pytest.raises(Exception, match="outside the folders"):
        client.predict([], str(tmp / "cats"), run_model, "quantile", "", None, api_name="/score")


def test_compare_two_images(app):
    client, _, tmp, run_model = app
    a, b = make_image(tmp / "cmp" / "a.png", seed=1), make_image(tmp / "cmp" / "b.png", seed=2)
    verdict = client.predict(
        handle_file(str(a)), handle_file(str(b)), run_model, api_name="/compare"
    )
    assert "P(A beats B) = " in verdict


def test_unavailable_model_gives_a_clear_message(app):
    client, _, tmp, _ = app
    image = make_image(tmp / "x" / "x.png")
    with pytest.raises(Exception, match="nobody/no-such-model-xyz"):
        client.predict(
            [handle_file(str(image))],
            "",
            "nobody/no-such-model-xyz",
            "quantile",
            "",
            None,
            api_name="/score",
        )


def test_prerank_project_and_method_b_from_votes(app):
    client, ctx, tmp, run_model = app
    out = client.predict("cats", run_model, 0.75, api_name="/prerank")
    assert "Pre-ranked **6** of 6" in out
    session = ctx.studio.project("cats")
    assert all(img.prior_mu is not None for img in session.images)
    uids = [img.uid for img in session.images]
    session.record_votes(
        [(None, uids[i], uids[i + 1], "left", "u", 1.7e9 + i, None, "test") for i in range(5)]
    )
    image = make_image(tmp / "y" / "y.png")
    summary, *_ = client.predict([handle_file(str(image))], "", run_model,
                                 "sigmoid fitted on a project's votes (method B)", "", "cats", api_name="/score")  # fmt: skip
    assert "Scored **1** of 1" in summary


def test_bucket_scores_api(app):
    client, *_ = app
    assert client.predict(
        [0.0, 1.0, 2.0, 3.0], "equal_width", "low,high", 1.0, 0.0, api_name="/bucket_scores"
    ) == ["low", "low", "high", "high"]
    assert client.predict([-10.0, 10.0], "sigmoid", "", 1.0, 0.0, api_name="/bucket_scores") == [
        "worst quality",
        "best quality",
    ]


def test_histogram_bars_keep_score_order():
    from ui.scoring.tab import histogram_update

    update = histogram_update([-25.2, -9.5, -14.1, -17.0, -9.9, -12.3])
    order = [float(x) for x in update["sort"]]
    assert order == sorted(order) and len(order) == len(update["value"])
    assert update["visible"] is True
    assert histogram_update([])["visible"] is False
