"""The Ranking tab: two images, five keys, and nothing in the way.

Layout: project and labeler, the comparison view (an HTML block with both display
copies and the next pair's images preloaded), the answer buttons, a progress line;
below, the leaderboard, the progress plot, new projects and owner tools
(:mod:`ui.ranking_panels`, :mod:`ui.ranking_owner`).

Keys are mapped to button clicks by the script in :data:`HEAD` (``launch(head=)``).
Every vote carries the id of the pair it answers (a hidden field the server fills),
so a double press, key repeat or second tab cannot count twice.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gradio as gr

from ranker.errors import StudioError
from ui.context import StudioContext
from ui.identity import (
    BROWSER_STORAGE_KEY,
    IdentityError,
    browser_secret,
    clean_name,
    new_anonymous_id,
    resolve_labeler,
)
from ui.ranking_core import RankingDesk
from ui.ranking_view import PairView, pair_html, progress_markdown

BUTTONS = (  # (elem_id, label, action)
    ("ps-vote-left", "A is better  (1 / ←)", "left"),
    ("ps-vote-tie", "Tie  (3 / ↑)", "tie"),
    ("ps-vote-right", "B is better  (2 / →)", "right"),
    ("ps-skip", "Skip  (S / ↓)", "skip"),
    ("ps-undo", "Undo  (Z / ⌫)", "undo"),
)

ASSETS = Path(__file__).parent / "assets"
HEAD = f"<script>\n{(ASSETS / 'ranking_keys.js').read_text()}</script>"
CSS = (ASSETS / "ranking.css").read_text()


# Server tuning for many labelers (process-wide, applied when the tab is built, before
# ``demo.queue()``; measured with bench/load_bench.py):
# - A vote holds the project's lock across several SQLite calls, each of which lets go
#   of the GIL. With Python's default 5 ms switch interval a busy event loop keeps the
#   lock holder waiting up to 5 ms at every call (a lock convoy); 0.5 ms keeps votes
#   flowing.
# - Gradio rebuilds a pandas summary of its last 10,000 events after *every* event
#   (up to 9 ms of CPU each); every 1,000 events is plenty for /monitoring.
GIL_SWITCH_INTERVAL_S = 0.0005
GRADIO_ENV = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000"}


def tune_server() -> None:
    """Apply the settings above (keeps values the operator set explicitly)."""
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    for key, value in GRADIO_ENV.items():
        os.environ.setdefault(key, value)


def build_ranking_tab(ctx: StudioContext) -> None:
    """Build the tab inside the current Blocks (see module docstring)."""
    tune_server()
    from gradio.context import Context

    from ui.ranking_api import register_api
    from ui.ranking_owner import build_owner_tools
    from ui.ranking_panels import build_leaderboard, build_new_project, build_progress

    desk = RankingDesk(ctx)
    names = _project_names(desk)
    stored = gr.BrowserState(
        {"name": "", "anon": "", "project": ""},
        storage_key=BROWSER_STORAGE_KEY,
        secret=browser_secret(ctx),
    )
    labeler = gr.State("")
    with gr.Row():
        project = gr.Dropdown(
            names,
            value=names[0] if names else None,
            label="Project",
            scale=3,
            elem_id="ps-project",
            allow_custom_value=False,
        )
        name_box = gr.Textbox(
            label="Your name (remembered by this browser)",
            scale=2,
            placeholder="anonymous",
            elem_id="ps-name",
            max_lines=1,
        )
        if ctx.on_space:
            gr.LoginButton(scale=1)
    view = gr.HTML(pair_html(None), elem_id="ps-pair")
    pair_id = gr.Textbox(visible=False, elem_id="ps-pair-id")
    with gr.Row():
        buttons = {
            action: gr.Button(
                label,
                elem_id=elem_id,
                variant="secondary",
                size="lg" if action in ("left", "right") else "md",
            )
            for elem_id, label, action in BUTTONS
        }
    progress = gr.Markdown(elem_id="ps-progress")
    admin_token = gr.Textbox(
        label="Admin token", type="password", render=False, elem_id="ps-admin-token"
    )

    lb = build_leaderboard(ctx, desk, project)
    build_progress(ctx, desk, project)
    build_new_project(ctx, desk, project, admin_token)
    build_owner_tools(ctx, desk, project, labeler, pair_id, admin_token, view)

    def show(view_: PairView | None, session=None) -> tuple:
        return (
            pair_html(view_, ctx.sound_enabled),
            (view_.pair_id or "") if view_ else "",
            (progress_line(ctx, desk, view_.project) if view_ else ""),
        )

    def on_load(stored_: dict | None, request: gr.Request, profile: gr.OAuthProfile | None):
        stored_ = dict(stored_ or {})
        if not stored_.get("anon"):
            stored_["anon"] = new_anonymous_id()
        who = resolve_labeler(
            getattr(profile, "username", None), stored_.get("name"), stored_["anon"]
        )
        choices = _project_names(desk)
        wanted = (request.query_params.get("project") if request else None) or stored_.get(
            "project"
        )
        chosen = wanted if wanted in choices else (choices[0] if choices else None)
        out = show(_safe_view(desk, chosen, who)) if chosen else show(None)
        return (
            who,
            stored_.get("name", ""),
            stored_,
            gr.update(choices=choices, value=chosen),
            *out,
        )

    Context.root_block.load(
        on_load,
        [stored],
        [labeler, name_box, stored, project, view, pair_id, progress],
        api_visibility="private",
    )

    def on_name(name: str, stored_: dict | None, profile: gr.OAuthProfile | None):
        stored_ = dict(stored_ or {})
        try:
            stored_["name"] = clean_name(name)
        except IdentityError as exc:
            gr.Warning(str(exc))
            return gr.update(), gr.update()
        return resolve_labeler(
            getattr(profile, "username", None), stored_["name"], stored_.get("anon")
        ), stored_

    def after_name(project_: str, who: str):
        return show(_safe_view(desk, project_, who)) if project_ else show(None)

    name_box.submit(on_name, [name_box, stored], [labeler, stored], api_visibility="private").then(
        after_name, [project, labeler], [view, pair_id, progress], api_visibility="private"
    )
    name_box.blur(on_name, [name_box, stored], [labeler, stored], api_visibility="private").then(
        after_name, [project, labeler], [view, pair_id, progress], api_visibility="private"
    )

    def on_project(project_: str, who: str, stored_: dict | None):
        stored_ = dict(stored_ or {})
        stored_["project"] = project_ or ""
        return (
            *(show(_safe_view(desk, project_, who)) if project_ and who else show(None)),
            stored_,
        )

    project.input(
        on_project,
        [project, labeler, stored],
        [view, pair_id, progress, stored],
        api_visibility="private",
    ).then(lb.refresh, lb.inputs, lb.outputs, api_visibility="private")

    def make_answer(action: str):
        def answer(project_: str, who: str, pid: str):
            if not project_ or not who:
                return show(None)
            try:
                if action == "undo":
                    v = desk.undo(project_, who)
                elif action == "skip":
                    v = desk.skip(project_, who, pid)
                else:
                    v = desk.vote(project_, who, pid, action)
            except StudioError as exc:
                v = _safe_view(desk, project_, who, str(exc))
            return show(v)

        return answer

    for action, button in buttons.items():
        button.click(
            make_answer(action),
            [project, labeler, pair_id],
            [view, pair_id, progress],
            api_visibility="private",
            show_progress="hidden",
            queue=True,
        )

    register_api(ctx, desk)


def progress_line(ctx: StudioContext, desk: RankingDesk, project: str) -> str:
    """The progress line under the buttons; on the demo also the Kendall tau of the
    order the leaderboard shows by default against the demo's known order."""
    from ui.demo import DEMO_PROJECT, kendall_tau_vs_truth, known_levels

    try:
        session = desk.session(project)
        tau = None
        if project == DEMO_PROJECT:
            levels = known_levels(ctx)
            board = session.leaderboard()  # the default order, as the leaderboard shows it
            ranked = [session.image(r["uid"]).name for r in board if not r["excluded"]]
            tau = kendall_tau_vs_truth(ranked, levels) if session.progress().votes else None
        return progress_markdown(session.progress(), tau)
    except StudioError as exc:
        return str(exc)


def _safe_view(
    desk: RankingDesk, project: str | None, labeler: str, message: str = ""
) -> PairView | None:
    """The current pair, or a view carrying the error message; never raises."""
    if not project:
        return None
    try:
        return desk.view(project, labeler, message)
    except StudioError as exc:
        return PairView(project, "", None, message=str(exc))


def _project_names(desk: RankingDesk) -> list[str]:
    try:
        return desk.project_names()
    except StudioError:
        return []
