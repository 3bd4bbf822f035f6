"""The whole loop, offline, in a real headless Chromium: what a newcomer does on the demo.

Rank 60 demo pairs by keyboard (answered as a careful labeler who sees the damage) ->
preview and export the dataset in the Dataset tab -> fine-tune the demo quality model
on the unzipped export from the Training tab -> score the 27 demo images with the
finished run in the Scoring tab -> the buckets, histogram and gallery are shown. No
network, no JoyQuality download: the demo model is built on first use.

Each stage's seconds are printed (``pytest -s``); the pair accuracy of the tuned model
against the demo's known order is computed from the scores the app wrote, and must
beat chance. ``bench/loop_demo.py`` gives the README's reproducible before/after figure.
"""

from __future__ import annotations

import re
import time
import zipfile

import pytest

from model import demo_model
from tests.conftest import launch_app
from tests.ui.helpers import make_context
from ui.demo import (
    DEMO_PROJECT,
    careful_answer,
    demo_dir,
    ensure_demo_project,
    known_levels,
    known_truth,
    pair_accuracy_vs_truth,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PAIR = "#ps-pair .ps-pair"
VOTES = 60
KEY = {"left": "1", "right": "2", "tie": "3"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    ctx = make_context(root, roots=[root / "data" / "demo"])
    ensure_demo_project(ctx)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(demo_model, "hub_model_cached", lambda repo: False)  # as on a fresh machine
        demo, url = launch_app(ctx, tabs=("Ranking", "Dataset", "Training", "Scoring"))
        yield ctx, url
        demo.close()


def rank_by_keyboard(page, ctx, votes: int) -> None:
    truth = known_truth(ctx)
    for _ in range(votes):
        pair = page.locator(PAIR)
        before = pair.get_attribute("data-pair-id")
        left = pair.locator("figure[data-side=left] figcaption .ps-name").inner_text()
        right = pair.locator("figure[data-side=right] figcaption .ps-name").inner_text()
        page.wait_for_timeout(200)  # a key within 150 ms of a new pair is refused
        page.keyboard.press(KEY[careful_answer(left, right, truth)])
        page.wait_for_function(f"document.querySelector('{PAIR}').dataset.pairId !== '{before}'")


def test_rank_export_train_score_offline(site, chromium_browser):
    ctx, url = site
    page = chromium_browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    # 1. Ranking: 60 pairs by keyboard
    page.goto(f"{url}/?project={DEMO_PROJECT}")
    page.wait_for_selector(f"{PAIR}[data-pair-id]:not([data-pair-id=''])")
    rank_by_keyboard(page, ctx, VOTES)
    assert ctx.studio.project(DEMO_PROJECT).progress().votes == VOTES
    seconds["rank"] = time.perf_counter() - began

    # 2. Dataset: preview (what the split costs), then export the Parquet dataset
    mark = time.perf_counter()
    page.get_by_role("tab", name="Dataset").click()
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("The split costs").wait_for()
    assert page.get_by_text(f"{VOTES} votes").count() >= 1
    page.locator("button.label-wrap", has_text="Export").first.click()
    page.get_by_role("button", name="Export", exact=True).click()
    page.locator("td.filename[aria-label$='.zip']").wait_for()  # the download link
    (archive,) = ctx.exports_dir.glob("*/*.zip")  # each export in its own unguessable folder
    dataset = ctx.exports_dir / "demo-dataset"  # unzipped where the server may read it
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dataset)
    seconds["export"] = time.perf_counter() - mark

    # 3. Training: the export, the demo model (preselected offline), preset personal
    mark = time.perf_counter()
    page.get_by_role("tab", name="Training").click()
    page.get_by_label("dataset", exact=True).check()
    page.get_by_label("Dataset (Hub id or local Parquet folder) or JSON file path").fill(
        str(dataset)
    )
    base = page.get_by_label("Base model (JoyQuality, the demo model, a run or a SigLIP)")
    assert base.input_value().startswith("Demo quality model")
    page.get_by_label("Run name (optional; an existing stopped run resumes)").fill("loop")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Started loop").wait_for(timeout=120_000)
    status = page.locator("#training-status")
    page.wait_for_function(
        "['finished', 'failed'].includes(document.querySelector('#training-status')"
        "?.dataset.state)",
        timeout=240_000,
    )
    assert status.get_attribute("data-state") == "finished", status.inner_text()
    assert (ctx.runs_dir / "loop" / "final" / "config.json").is_file()
    seconds["train"] = time.perf_counter() - mark

    # 4. Scoring: the finished run on the demo folder
    mark = time.perf_counter()
    page.get_by_role("tab", name="Scoring").click()
    page.get_by_role("button", name="Refresh runs").click()
    model = page.get_by_label("Model (default, a Hub id, or a training run)")
    model.click()
    page.get_by_role("option", name="run: loop").click()
    assert model.input_value() == "run: loop"
    page.get_by_label("Local folder (on this server)").fill(str(demo_dir(ctx) / "images"))
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("Scored 27 of 27 images.").wait_for(timeout=120_000)
    seconds["score"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - began

    # 5. Buckets shown: the per-bucket table, captions in the gallery, the histogram
    buckets = page.locator("table", has=page.locator("th", has_text="bucket")).first
    assert buckets.locator("tbody tr").count() >= 2
    captions = page.locator(".gallery-item, button.thumbnail-item")
    assert captions.count() >= 1
    assert page.get_by_text("Score histogram").count() >= 1

    (scores_csv,) = ctx.exports_dir.glob("*/scores.csv")  # its own unguessable folder
    scores = {}
    for line in scores_csv.read_text().splitlines()[1:]:
        path, score = re.match(r'"([^"]*)",([^,]*),', line).groups()
        scores[path.rsplit("/", 1)[-1]] = float(score)
    accuracy, pairs = pair_accuracy_vs_truth(scores, known_levels(ctx))
    print(f"\nwhole loop seconds: { {k: round(v, 1) for k, v in seconds.items()} }")
    print(f"tuned model pair accuracy vs the known order: {accuracy:.1%} over {pairs} pairs")
    assert len(scores) == 27 and pairs == 216
    assert accuracy > 0.5
