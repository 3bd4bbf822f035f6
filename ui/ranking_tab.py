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

HEAD = """
<script>
(() => {
  if (window.__psKeys) return;
  window.__psKeys = true;
  const MAP = {"1": "ps-vote-left", "ArrowLeft": "ps-vote-left", "2": "ps-vote-right",
    "ArrowRight": "ps-vote-right", "3": "ps-vote-tie", "ArrowUp": "ps-vote-tie",
    "s": "ps-skip", "S": "ps-skip", "ArrowDown": "ps-skip", "z": "ps-undo", "Z": "ps-undo",
    "Backspace": "ps-undo"};
  const ANSWERS = new Set(["ps-vote-left", "ps-vote-right", "ps-vote-tie", "ps-skip"]);
  const MIN_LOOK_MS = 150;   // a key within this time of a new pair is the tail of a double press
  const RETRY_MS = 2500;     // an unanswered press may be retried after this long
  let seen = null, seenAt = 0, answered = null, answeredAt = 0, audio = null;
  const pairEl = () => document.querySelector("#ps-pair .ps-pair");
  const track = () => {
    const el = pairEl(), id = el ? el.dataset.pairId : null;
    if (id !== seen) { seen = id; seenAt = performance.now(); }
  };
  new MutationObserver(track).observe(document.documentElement, {childList: true, subtree: true});
  const button = (id) => {
    const el = document.getElementById(id);
    return el && el.tagName !== "BUTTON" ? el.querySelector("button") || el : el;
  };
  const blip = () => {
    const el = pairEl();
    if (!el || el.dataset.sound !== "1") return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 740; gain.gain.value = 0.04;
      osc.connect(gain).connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.035);
    } catch (e) { /* no audio: fine */ }
  };
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#ps-vote-left, #ps-vote-right, #ps-vote-tie")) blip();
  }, true);
  document.addEventListener("keydown", (e) => {
    if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const id = MAP[e.key];
    const el = pairEl();
    if (!id || !el || el.offsetParent === null) return;  // not on the Ranking tab
    const btn = button(id);
    if (!btn) return;
    e.preventDefault();
    if (ANSWERS.has(id)) {
      track();
      const now = performance.now(), pid = el.dataset.pairId;
      if (!pid) return;
      if (answered === pid && now - answeredAt < RETRY_MS) return;  // this pair is answered
      if (now - seenAt < MIN_LOOK_MS) return;
      answered = pid; answeredAt = now;
    }
    btn.click();
  }, true);
})();
</script>
"""

CSS = """
#ps-pair .ps-instruction { font-size: 1.3em; font-weight: 600; text-align: center; margin: .2em 0; }
#ps-pair .ps-message { min-height: 1.4em; text-align: center; opacity: .75; }
#ps-pair .ps-sides { display: flex; gap: 12px; }
#ps-pair .ps-side { flex: 1; margin: 0; text-align: center; min-width: 0; }
#ps-pair .ps-key { font-weight: 600; opacity: .75; margin-bottom: 4px; }
#ps-pair .ps-img { width: 100%; height: min(56vh, 600px); object-fit: contain;
  background: #1113; border-radius: 8px; }
#ps-pair .ps-error { height: min(56vh, 600px); display: flex; flex-direction: column;
  justify-content: center; border: 2px dashed #c33; color: #c33; border-radius: 8px; padding: 1em; }
#ps-pair .ps-prefetch { display: none; }
#ps-pair .ps-context > div { white-space: pre-line; text-align: left; max-height: 12em; overflow: auto; }
#ps-pair figcaption { font-size: .85em; opacity: .7; }
.ps-thumb { height: 56px; width: auto; border-radius: 4px; }
"""


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
    """The progress line under the buttons (plus tau vs the known order on the demo)."""
    from ui.demo import DEMO_PROJECT, kendall_tau_vs_truth, known_levels

    try:
        session = desk.session(project)
        tau = None
        if project == DEMO_PROJECT:
            levels = known_levels(ctx)
            ranked = [
                session.image(r["uid"]).name for r in session.leaderboard() if not r["excluded"]
            ]
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
