"""The keyboard-driven ranking flow in a real headless Chromium (Playwright).

Voting 20 times from the keyboard shows 20 comparisons on the leaderboard; a rapid
double press or key auto-repeat counts once; a corrupt image and hostile context
are shown as a clear message and inert text.
"""

from __future__ import annotations

import pytest

from tests.conftest import launch_app
from tests.ui.helpers import corrupt, make_context, make_project
from ui.demo import DEMO_PROJECT, ensure_demo_project

pytestmark = pytest.mark.browser
PAIR = "#ps-pair .ps-pair"
HOSTILE = "<script>window.__pwned=1</script><b>bold</b> ${7*7} {{7*7}}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    ctx = make_context(root)
    ensure_demo_project(ctx)
    make_project(ctx, "broken", root / "broken", n=2)
    corrupt(root / "broken" / "img000.png")
    make_project(ctx, "context", root / "ctx", n=3, context={"default": HOSTILE})
    demo, url = launch_app(ctx)
    yield ctx, url
    demo.close()


@pytest.fixture
def page(chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def open_project(page, url: str, project: str) -> None:
    page.goto(f"{url}/?project={project}")
    page.wait_for_selector(f"{PAIR}[data-pair-id]:not([data-pair-id=''])")


def pair_id(page) -> str:
    return page.get_attribute(PAIR, "data-pair-id")


def answer(page, key: str) -> None:
    """Press ``key`` once the pair has been on screen a moment; wait for the next pair."""
    before = pair_id(page)
    page.wait_for_timeout(200)
    page.keyboard.press(key)
    page.wait_for_function(f"document.querySelector('{PAIR}').dataset.pairId !== '{before}'")


def test_twenty_keyboard_votes_reach_the_leaderboard(site, page):
    ctx, url = site
    open_project(page, url, DEMO_PROJECT)
    start = ctx.studio.project(DEMO_PROJECT).progress().votes
    for k in range(20):
        answer(page, ["1", "2", "3", "ArrowLeft", "ArrowRight", "ArrowUp"][k % 6])
    assert ctx.studio.project(DEMO_PROJECT).progress().votes == start + 20
    page.click("#ps-leaderboard")  # open the accordion: the board loads
    page.wait_for_function(
        "document.querySelector('#ps-leaderboard-summary')?.innerText.includes("
        f"'{start + 20} comparisons')"
    )
    assert page.locator("#ps-leaderboard-table img.ps-thumb").count() >= 10
    votes = ctx.studio.project(DEMO_PROJECT).votes()[-20:]
    assert {v.outcome for v in votes} == {"left", "right", "tie"}


def test_double_press_and_key_repeat_count_once(site, page):
    ctx, url = site
    open_project(page, url, DEMO_PROJECT)
    project = ctx.studio.project(DEMO_PROJECT)
    start = project.progress().votes
    first = pair_id(page)
    page.wait_for_timeout(200)
    page.keyboard.press("1")
    page.keyboard.press("1")  # a fast double press
    page.wait_for_function(f"document.querySelector('{PAIR}').dataset.pairId !== '{first}'")
    page.wait_for_timeout(600)
    assert project.progress().votes == start + 1
    second = pair_id(page)
    page.wait_for_timeout(200)
    page.keyboard.down("2")
    page.keyboard.down("2")  # auto-repeat: event.repeat is true
    page.keyboard.down("2")
    page.keyboard.up("2")
    page.wait_for_function(f"document.querySelector('{PAIR}').dataset.pairId !== '{second}'")
    page.wait_for_timeout(600)
    assert project.progress().votes == start + 2
    # two clicks that bypass the key guard: the pair id makes the server count one
    third = pair_id(page)
    page.evaluate(
        "() => { const b = document.getElementById('ps-vote-tie'); b.click(); b.click(); }"
    )
    page.wait_for_function(f"document.querySelector('{PAIR}').dataset.pairId !== '{third}'")
    page.wait_for_timeout(600)
    assert project.progress().votes == start + 3


def test_undo_and_skip_keys(site, page):
    ctx, url = site
    open_project(page, url, DEMO_PROJECT)
    project = ctx.studio.project(DEMO_PROJECT)
    start = project.progress().votes
    answer(page, "ArrowRight")
    assert project.progress().votes == start + 1
    page.keyboard.press("z")
    page.wait_for_function(
        f"document.querySelector('{PAIR} .ps-message').innerText.startsWith('Undid')"
    )
    assert project.progress().votes == start
    answer(page, "s")
    assert project.progress().votes == start


def test_corrupt_image_shows_a_clear_message(site, page):
    _, url = site
    open_project(page, url, "broken")
    error = page.locator(f"{PAIR} .ps-error")
    assert error.count() == 1
    assert "Cannot show img000.png" in error.inner_text()
    assert "corrupt or unreadable" in error.inner_text()


def test_hostile_context_is_inert(site, page):
    _, url = site
    open_project(page, url, "context")
    page.locator(f"{PAIR} .ps-context summary").first.click()
    text = page.locator(f"{PAIR} .ps-context div").first.inner_text()
    assert "${7*7} {{7*7}}" in text and "49" not in text
    assert page.locator(f"{PAIR} .ps-context b").first.inner_text() == "bold"
    assert page.evaluate("() => window.__pwned") is None


def test_identity_and_pair_survive_a_refresh(site, page):
    ctx, url = site
    open_project(page, url, DEMO_PROJECT)
    anonymous_pair = pair_id(page)
    page.reload()
    page.wait_for_selector(f"{PAIR}[data-pair-id='{anonymous_pair}']")  # same labeler, same pair
    page.fill("#ps-name textarea, #ps-name input", "Dana")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelector('{PAIR}').dataset.pairId !== '{anonymous_pair}'"
    )
    dana_pair = pair_id(page)
    page.reload()
    page.wait_for_selector(f"{PAIR}[data-pair-id='{dana_pair}']")
    assert page.input_value("#ps-name textarea, #ps-name input") == "Dana"
    answer(page, "2")
    assert ctx.studio.project(DEMO_PROJECT).votes()[-1].labeler == "Dana"
