"""Model in the loop in the launched app: the owner attaches the demo model to the demo
project (page and API), everyone sees the held-out agreement move as votes come in,
the leaderboard says what places each image, and detaching is owner-only."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client

from model import demo_model
from ranker.attached import PrequentialLoop
from tests.conftest import launch_app
from tests.ui.helpers import make_context, make_project
from ui.demo import DEMO_PROJECT, ensure_demo_project

TOKEN = "owner-token"
PAIR = "#ps-pair .ps-pair"
AGREEMENT = re.compile(r"agreement (\d+)% on (\d+) held-out votes")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("model-loop")
    ctx = make_context(root, admin_token=TOKEN)
    ensure_demo_project(ctx)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_model, "STEPS", 3)  # the recipe's shape, built in a few seconds
        mp.setattr(demo_model, "VARIANTS", 1)
        mp.setattr(demo_model, "hub_model_cached", lambda repo: False)  # the demo is preselected
        demo_model.ensure_demo_model(ctx.data_dir / "models")
        demo, url = launch_app(ctx)
        yield ctx, url
        demo.close()


def test_api_attach_is_owner_only_and_status_is_public(site):
    ctx, url = site
    c = Client(url, verbose=False)
    with pytest.raises(Exception, match="needs the owner"):
        c.predict(DEMO_PROJECT, "", "", api_name="/attach_model")
    assert c.predict(DEMO_PROJECT, api_name="/model_status")["attached"] is False
    with pytest.raises(Exception, match="not offered here"):
        c.predict(DEMO_PROJECT, "someone/else", TOKEN, api_name="/attach_model")
    status = c.predict(DEMO_PROJECT, "", TOKEN, api_name="/attach_model")
    assert status["attached"] and status["ready"] and status["votes_judged"] == 0
    assert c.predict(DEMO_PROJECT, api_name="/model_status") == status
    rows = c.predict(DEMO_PROJECT, api_name="/leaderboard")
    assert {r["ranked_by"] for r in rows} <= {"votes", "model", "none"}
    with pytest.raises(Exception, match="needs the owner"):
        c.predict(DEMO_PROJECT, "", api_name="/detach_model")
    assert c.predict(DEMO_PROJECT, TOKEN, api_name="/detach_model")["attached"] is False
    assert "ranked_by" not in c.predict(DEMO_PROJECT, api_name="/leaderboard")[0]


def test_owner_exports_the_head_and_the_other_tabs_offer_it_by_name(site, tmp_path):
    ctx, url = site
    project = "export me"  # its own project: the demo project's votes stay for the next test
    make_project(ctx, project, tmp_path / "imgs", n=8)
    c = Client(url, verbose=False)
    with pytest.raises(Exception, match="no model attached"):
        c.predict(project, TOKEN, api_name="/export_head")
    c.predict(project, "", TOKEN, api_name="/attach_model")
    key = c.predict(project, "exporter", api_name="/join")["key"]
    for k in range(4):
        pair = c.predict(project, key, api_name="/next_pair")
        c.predict(project, key, pair["pair_id"], "left" if k % 2 else "right", api_name="/vote")
    with pytest.raises(Exception, match="needs the owner"):
        c.predict(project, "", api_name="/export_head")
    done = c.predict(project, TOKEN, api_name="/export_head")
    name = f"head: {project}"
    assert done["name"] == name and done["votes"] == 4 and done["project"] == project
    # the Scoring tab offers it by name (never a server folder) and loads it by that name;
    # it scores like the project's head
    from model.named import exported_heads
    from model.scoring import score_images
    from ui.scoring.models import check_source, get_model, model_choices

    assert (name, name) in model_choices(ctx)
    from ui.training.tab import _desk, base_model_choices

    folder = exported_heads(ctx.data_dir / "models")[name]
    assert check_source(ctx, name) == str(folder)
    session = ctx.studio.project(project)
    head = session.online_head()
    paths = [img.path for img in session.images]
    scores = [r["score"] for r in score_images(get_model(ctx, name), paths, num_workers=0)]
    assert scores == pytest.approx(list(head.scores), abs=1e-3)
    # the Training tab offers it as a starting point, by name, and resolves it
    desk = _desk(ctx)
    assert (name, name) in base_model_choices(ctx, desk)
    config = desk.build_config({"source": "project", "data": project, "base_model": name})
    assert config.base_model == str(folder)
    with pytest.raises(Exception, match="no exported head"):
        desk.build_config({"source": "project", "data": project, "base_model": "head: nope"})


@pytest.mark.browser
def test_owner_attaches_the_demo_model_and_agreement_moves_with_votes(site, chromium_browser):
    ctx, url = site
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{url}/?project={DEMO_PROJECT}&token={TOKEN}")
        page.wait_for_selector(f"{PAIR}[data-pair-id]:not([data-pair-id=''])")
        page.click("#ps-model")  # open the panel
        page.wait_for_function("document.querySelector('#ps-model-status')?.innerText.length > 0")
        page.click("#ps-model-attach")
        page.wait_for_function(
            "document.querySelector('#ps-model-status')?.innerText.includes('Attached')",
            timeout=120_000,
        )
        assert isinstance(ctx.studio.project(DEMO_PROJECT).selector, PrequentialLoop)
        seen = []
        for k in range(6):
            before = page.get_attribute(PAIR, "data-pair-id")
            page.wait_for_timeout(200)
            page.keyboard.press("1" if k % 2 else "2")  # decided votes: each one is judged
            page.wait_for_function(
                f"document.querySelector('{PAIR}').dataset.pairId !== '{before}'"
            )
            page.wait_for_function(
                "document.querySelector('#ps-progress')?.innerText.includes("
                f"'on {k + 1} held-out votes')"
            )
            found = AGREEMENT.search(page.inner_text("#ps-progress"))
            seen.append((int(found.group(1)), int(found.group(2))))
        assert [n for _, n in seen] == [1, 2, 3, 4, 5, 6]  # the figure moves with each vote
        status = ctx.studio.project(DEMO_PROJECT).model_status()
        assert seen[-1][0] == round(status.agreement * 100)
        assert "of images ranked by votes" in page.inner_text("#ps-progress")
    finally:
        context.close()


def test_app_intake_embeds_new_images_or_names_those_that_wait(site, tmp_path):
    """The glue the Dataset tab's import runs after adding images to a project."""
    from model.demo_model import DEMO_MODEL_NAME
    from tests.ui.helpers import make_images
    from ui.ranking.desk import RankingDesk
    from ui.ranking.model_panel import _attach, embed_after_intake

    ctx, _ = site
    session = make_project(ctx, "intake", tmp_path / "imgs", n=4)
    _attach(ctx, RankingDesk(ctx), "intake", DEMO_MODEL_NAME)
    session = ctx.studio.project("intake")
    session.add_files(make_images(tmp_path / "new", 2, size=(44, 33)))
    text = embed_after_intake(ctx, session)
    assert text.startswith("embedded 2 new images") and session.model_status().ready
    # a model the app no longer offers (here: attached by a script under a folder path)
    info = {**session.attached_model, "source": str(tmp_path / "elsewhere")}
    session.store.update_project(session.row.id, settings={**session.row.settings, "model": info})
    session = ctx.studio.project("intake")
    session._reload()
    session.add_files(make_images(tmp_path / "late", 1, size=(45, 35)))
    text = embed_after_intake(ctx, session)
    assert "1 new images wait for embeddings" in text and "img000.png" in text
    assert "not offered here" in text and not session.model_status().ready
