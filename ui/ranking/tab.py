"""The Ranking tab: two images, five keys, and nothing in the way.

Layout: project and labeler, the comparison view (an HTML block with both display
copies and the next pair's images preloaded), the answer buttons, a progress line;
below, the leaderboard, the progress plot, new projects and owner tools
(:mod:`ui.ranking.panels`, :mod:`ui.ranking.owner`).

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
    browser_claim,
    browser_secret,
    clean_name,
    new_browser_token,
    resolve_labeler,
    valid_browser_token,
)
from ui.policy import prefill_token, require, username
from ui.ranking.desk import RankingDesk
from ui.ranking.view import PairView, pair_html, progress_markdown

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

    from ui.ranking.api import register_api
    from ui.ranking.model_panel import build_model_panel
    from ui.ranking.owner import build_owner_tools
    from ui.ranking.panels import build_leaderboard, build_new_project, build_progress

    desk = RankingDesk(ctx)
    names = _project_names(desk)
    stored = gr.BrowserState(
        {"name": "", "token": "", "project": ""},
        storage_key=BROWSER_STORAGE_KEY,
        secret=browser_secret(ctx),
    )
    labeler = gr.State("")  # server-side: a page cannot name someone else
    holder = gr.State("")  # the browser's secret token (claims typed names)
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
    build_model_panel(ctx, desk, project, admin_token)
    build_new_project(ctx, desk, project, admin_token)
    build_owner_tools(ctx, desk, project, labeler, pair_id, admin_token, view)
    prefill_token(admin_token)

    def show(view_: PairView | None, session=None) -> tuple:
        return (
            pair_html(view_, ctx.sound_enabled),
            (view_.pair_id or "") if view_ else "",
            (progress_line(ctx, desk, view_.project) if view_ else ""),
        )

    def claimed_view(project_, who: str, token: str, message: str = "") -> PairView | None:
        """The pair view, once the typed name is this browser's in the project."""
        if not project_ or not who or not token:
            return None
        try:
            browser_claim(ctx, desk.session(project_), who, token)
        except StudioError as exc:
            return PairView(project_, "", None, message=str(exc))
        return _safe_view(desk, project_, who, message)

    def on_load(stored_: dict | None, request: gr.Request, profile: gr.OAuthProfile | None):
        require(ctx, "ranking.tab.on_load")
        stored_ = dict(stored_) if isinstance(stored_, dict) else {}
        token = valid_browser_token(stored_.get("token")) or new_browser_token()
        stored_ = {"name": stored_.get("name") or "", "token": token,
                   "project": stored_.get("project") or ""}  # fmt: skip
        who = resolve_labeler(ctx, username(profile), stored_["name"], token)
        choices = _project_names(desk)
        wanted = (request.query_params.get("project") if request else None) or stored_.get(
            "project"
        )
        chosen = wanted if wanted in choices else (choices[0] if choices else None)
        out = show(claimed_view(chosen, who, token))
        return (
            who,
            token,
            stored_.get("name", ""),
            stored_,
            gr.update(choices=choices, value=chosen),
            *out,
        )

    Context.root_block.load(
        on_load,
        [stored],
        [labeler, holder, name_box, stored, project, view, pair_id, progress],
        api_visibility="private",
    )

    def on_name(name: str, stored_: dict | None, token: str, profile: gr.OAuthProfile | None):
        require(ctx, "ranking.tab.on_name")
        stored_ = dict(stored_) if isinstance(stored_, dict) else {}
        try:
            stored_["name"] = clean_name(name)
        except IdentityError as exc:
            gr.Warning(str(exc))
            return gr.update(), gr.update()
        if not token:
            return gr.update(), stored_
        return resolve_labeler(ctx, username(profile), stored_["name"], token), stored_

    def after_name(project_: str, who: str, token: str):
        require(ctx, "ranking.tab.after_name")
        return show(claimed_view(project_, who, token))

    for trigger in (name_box.submit, name_box.blur):
        trigger(
            on_name, [name_box, stored, holder], [labeler, stored], api_visibility="private"
        ).then(
            after_name,
            [project, labeler, holder],
            [view, pair_id, progress],
            api_visibility="private",
        )

    def on_project(project_: str, who: str, token: str, stored_: dict | None):
        require(ctx, "ranking.tab.on_project")
        stored_ = dict(stored_) if isinstance(stored_, dict) else {}
        stored_["project"] = project_ or ""
        return (*show(claimed_view(project_, who, token)), stored_)

    project.input(
        on_project,
        [project, labeler, holder, stored],
        [view, pair_id, progress, stored],
        api_visibility="private",
    ).then(lb.refresh, lb.inputs, lb.outputs, api_visibility="private")

    def make_answer(action: str):
        def answer(project_: str, who: str, token: str, pid: str):
            require(ctx, "ranking.tab.answer")
            if not project_ or not who or not token:
                return show(None)
            try:
                browser_claim(ctx, desk.session(project_), who, token)
            except StudioError as exc:  # not this browser's name: show nothing of it
                return show(PairView(project_, "", None, message=str(exc)))
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
            [project, labeler, holder, pair_id],
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
    from ui.ranking.model_panel import status_markdown

    try:
        session = desk.session(project)
        tau = None
        if project == DEMO_PROJECT:
            levels = known_levels(ctx)
            board = session.leaderboard()  # the default order, as the leaderboard shows it
            ranked = [session.image(r["uid"]).name for r in board if not r["excluded"]]
            tau = kendall_tau_vs_truth(ranked, levels) if session.progress().votes else None
        line = progress_markdown(session.progress(), tau)
        model = status_markdown(session.model_status())  # empty without an attached model
        return line.replace("\n\n", f" · {model}\n\n", 1) if model else line
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
