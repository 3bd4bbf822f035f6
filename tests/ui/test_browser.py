"""The keyboard-driven ranking flow in a real headless Chromium (Playwright).

Voting 20 times from the keyboard shows 20 comparisons on the leaderboard; a rapid
double press or key auto-repeat counts once, and a key too soon after a new pair is
refused with a visible cue; undo shows the undone pair again; the pair, the buttons
and the progress line fit a 1366x768 screen; a corrupt image and hostile context
are shown as a clear message and inert text.
"""

from __future__ import annotations

import pytest

from tests.conftest import launch_app
from tests.ui.helpers import corrupt, make_context, make_project
from ui.demo import DEMO_PROJECT, ensure_demo_project
from ui.ranking.tab import BUTTONS

pytestmark = pytest.mark.browser
PAIR = "#ps-pair .ps-pair"
SIDES = ("left", "right")
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


def sides(page) -> list[str]:
    """The uids on screen, left then right."""
    return [page.get_attribute(f"{PAIR} figure[data-side='{s}']", "data-uid") for s in SIDES]


def test_undo_shows_the_undone_pair_again_and_skip_key(site, page):
    ctx, url = site
    open_project(page, url, DEMO_PROJECT)
    project = ctx.studio.project(DEMO_PROJECT)
    start = project.progress().votes
    shown, shown_id = sides(page), pair_id(page)
    answer(page, "ArrowRight")
    assert project.progress().votes == start + 1 and sides(page) != shown
    page.keyboard.press("z")
    page.wait_for_function(
        f"document.querySelector('{PAIR} .ps-message').innerText.startsWith('Undid')"
    )
    assert project.progress().votes == start
    assert sides(page) == shown and pair_id(page) != shown_id  # back, same sides, to answer
    answer(page, "ArrowLeft")  # the misclick, answered again
    assert project.progress().votes == start + 1
    assert [(v.left_uid, v.right_uid, v.outcome) for v in project.votes()[-1:]] == [
        (*shown, "left")
    ]
    answer(page, "s")
    assert project.progress().votes == start + 1


def test_a_key_too_soon_after_a_new_pair_is_refused_visibly(site, page):
    ctx, url = site
    open_project(page, url, DEMO_PROJECT)
    project = ctx.studio.project(DEMO_PROJECT)
    start = project.progress().votes
    first = pair_id(page)
    # the instant the next pair appears, press "2" (well inside the 150 ms guard)
    page.evaluate(
        """(first) => new MutationObserver((_, obs) => {
            const el = document.querySelector('#ps-pair .ps-pair');
            if (!el || el.dataset.pairId === first || !el.dataset.pairId) return;
            obs.disconnect();
            document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '2', bubbles: true}));
        }).observe(document.documentElement, {childList: true, subtree: true})""",
        first,
    )
    page.wait_for_timeout(200)
    page.keyboard.press("1")
    page.wait_for_selector(f"{PAIR}.ps-refused")
    second = pair_id(page)
    assert second != first
    assert page.inner_text(f"{PAIR} .ps-message").startswith("Too soon")
    page.wait_for_timeout(500)
    assert project.progress().votes == start + 1  # the early key did not vote
    answer(page, "2")  # pressed again after a look: counted
    assert project.progress().votes == start + 2
    assert project.votes()[-1].outcome == "right"


def test_pair_buttons_and_progress_fit_a_1366x768_screen(site, chromium_browser):
    _, url = site
    context = chromium_browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        open_project(page, url, DEMO_PROJECT)
        page.wait_for_function(
            "[...document.querySelectorAll('#ps-pair img.ps-img')].every(i => i.complete)"
        )
        parts = [f"{PAIR} img.ps-img", "#ps-progress", *(f"#{b[0]}" for b in BUTTONS)]
        for selector in parts:
            found = page.locator(selector).all()
            assert found, selector
            for box in (el.bounding_box() for el in found):
                assert box is not None, selector  # rendered
                assert box["x"] >= 0 and box["y"] >= 0, selector
                assert box["x"] + box["width"] <= 1366, selector
                assert box["y"] + box["height"] <= 768, (selector, box)
        assert page.locator(f"{PAIR} img.ps-img").count() == 2
        assert "ranking confidence" in page.inner_text("#ps-progress")
        assert "coin flip" in page.inner_text("#ps-progress")  # explained where shown
        assert page.evaluate("() => window.scrollY") == 0
    finally:
        context.close()


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


def test_progress_plot_says_why_it_is_empty(site, page):
    _, url = site
    open_project(page, url, "context")  # nobody has voted here
    page.click("#ps-progress-panel")
    page.wait_for_function(
        "document.querySelector('#ps-progress-note')?.innerText.startsWith('No votes yet')"
    )
    assert "coin flip" in page.inner_text("#ps-progress-panel")
