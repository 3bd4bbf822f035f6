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
from tests.ui.helpers import make_context
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
