"""The Ranking tab's lower panels: leaderboard, progress plot, new project."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ranker.errors import StudioError
from ranker.results import DEFAULT_ORDER, LEADERBOARD_ORDERS
from ui.context import StudioContext
from ui.policy import require
from ui.ranking.desk import RankingDesk
from ui.ranking.progress import ConfidenceHistory
from ui.ranking.projects import create_project, parse_settings
from ui.ranking.view import (
    CONFIDENCE_HELP,
    LEADERBOARD_HEADERS,
    LEADERBOARD_TYPES,
    leaderboard_rows,
    select_rows,
)

VIEWS = {"Top 10": "top", "Middle 10": "middle", "Bottom 10": "bottom", "All": "all"}
ORDERS = list(LEADERBOARD_ORDERS)


def strategies() -> list[str]:
    try:
        from ranker.selection import STRATEGIES

        return list(STRATEGIES)
    except ImportError:
        return ["active", "smart_shuffle", "auto_shuffle", "elimination", "random", "budget"]


def presets() -> list[str]:
    from ranker.ratings import PRESETS

    return list(PRESETS)


@dataclass
class Refresher:
    """An event function with its inputs and outputs, for chaining with ``.then``."""

    refresh: object
    inputs: list
    outputs: list


def build_leaderboard(ctx: StudioContext, desk: RankingDesk, project: gr.Dropdown) -> Refresher:
    with gr.Accordion("Leaderboard", open=False, elem_id="ps-leaderboard") as acc:
        with gr.Row():
            view = gr.Radio(list(VIEWS), value="Top 10", label="Show", scale=3)
            order = gr.Radio(
                ORDERS,
                value=DEFAULT_ORDER,
                label="Order by",
                scale=2,
                info="auto = the pair strategy's own ranking (for active: its sort order, "
                "then mu, then the refit); conservative = mu - 3 sigma; "
                "refit = Bradley-Terry fit of all votes",
            )
            refresh = gr.Button("Refresh", scale=1, elem_id="ps-leaderboard-refresh")
        summary = gr.Markdown(elem_id="ps-leaderboard-summary")
        table = gr.Dataframe(
            headers=LEADERBOARD_HEADERS,
            datatype=LEADERBOARD_TYPES,
            interactive=False,
            wrap=True,
            max_height=640,
            elem_id="ps-leaderboard-table",
        )

    def load(project_: str, view_: str, order_: str):
        if not project_:
            return "", None
        try:
            session = desk.session(project_)
            rows = session.leaderboard(order_ or None)
        except StudioError as exc:
            return str(exc), None
        p = session.progress()
        excluded = sum(r["excluded"] for r in rows)
        text = f"**{p.votes} comparisons** between {p.active_images} images" + (
            f" ({excluded} excluded)" if excluded else ""
        )
        shown = select_rows(rows, VIEWS.get(view_, "top"))
        names = {img.uid: img.name for img in session.images}
        thumbs = desk.thumbnails(session, [r["uid"] for r in shown])
        return text, leaderboard_rows(shown, names, thumbs)

    inputs, outputs = [project, view, order], [summary, table]
    for trigger in (refresh.click, view.change, order.change, acc.expand):
        trigger(load, inputs, outputs, api_visibility="private")
    return Refresher(load, inputs, outputs)


def build_progress(ctx: StudioContext, desk: RankingDesk, project: gr.Dropdown) -> None:
    import pandas as pd

    history = ConfidenceHistory()
    with gr.Accordion("Progress", open=False, elem_id="ps-progress-panel") as acc:
        plot = gr.LinePlot(
            x="votes",
            y="confidence",
            title="Ranking confidence against votes",
            x_title="votes so far",
            y_title="ranking confidence (0.5 = coin flip)",
            y_lim=[0, 1],
            elem_id="ps-progress-plot",
        )
        note = gr.Markdown(elem_id="ps-progress-note")
        gr.Markdown(CONFIDENCE_HELP)
        refresh = gr.Button("Refresh plot")

    def load(project_: str):
        if not project_:
            return None, "Choose a project."
        try:
            series = history.series(desk.session(project_))
        except StudioError as exc:
            return None, str(exc)
        if len(series) < 2:  # one point draws as an empty chart: say why instead
            return None, "No votes yet: the curve starts at 50% and grows with each vote."
        return pd.DataFrame(series, columns=["votes", "confidence"]), ""

    for trigger in (refresh.click, acc.expand):
        trigger(load, [project], [plot, note], api_visibility="private")


def build_new_project(
    ctx: StudioContext, desk: RankingDesk, project: gr.Dropdown, admin_token: gr.Textbox
) -> None:
    with gr.Accordion("New project", open=False):
        with gr.Row():
            name = gr.Textbox(label="Name", max_lines=1)
            instruction = gr.Textbox(
                label="Instruction shown above each pair",
                placeholder="Which image has better overall quality?",
            )
        files = gr.File(
            label="Images or a zip", file_count="multiple", file_types=["image", ".zip"]
        )
        with gr.Row(visible=bool(ctx.allowed_roots)):
            roots = ", ".join(str(r) for r in ctx.allowed_roots)
            folder = gr.Textbox(label=f"…or a local folder (inside {roots})", max_lines=1)
            recursive = gr.Checkbox(label="include subfolders")
        with gr.Row():
            dataset = gr.Textbox(
                label="…or a Hugging Face image dataset id", max_lines=1, placeholder="user/dataset"
            )
            split = gr.Textbox(value="train", label="split", max_lines=1)
            max_images = gr.Number(value=500, precision=0, label="max images")
        with gr.Row():
            strategy = gr.Dropdown(strategies(), value="active", label="Pair selection")
            budget = gr.Number(value=0, precision=0, label="Comparison budget (0 = none)")
            share = gr.Slider(0, 1, value=0.5, step=0.05, label="Random share (budget strategy)")
            preset = gr.Dropdown(presets(), value="image_ranker", label="Rating preset")
        create = gr.Button("Create project", variant="primary")
        report = gr.Textbox(label="Result", lines=4, interactive=False)

    def on_create(
        name_,
        instruction_,
        files_,
        folder_,
        recursive_,
        dataset_,
        split_,
        max_,
        strategy_,
        budget_,
        share_,
        preset_,
        token,
        profile: gr.OAuthProfile | None,
    ):
        try:
            require(ctx, "ranking.panels.on_create", token, profile)
            settings = parse_settings(strategy_, budget_, preset_, share_)
            text = create_project(
                ctx,
                name_,
                instruction_,
                files=list(files_ or []),
                folder=folder_,
                recursive=recursive_,
                dataset_id=dataset_,
                split=split_,
                max_images=int(max_ or 500),
                settings=settings,
            )
        except StudioError as exc:
            return f"Not created: {exc}", gr.update()
        return (
            f"Created {name_.strip()!r}: {text}\nChoose it above to start ranking.",
            gr.update(choices=desk.project_names()),
        )

    create.click(
        on_create,
        [
            name,
            instruction,
            files,
            folder,
            recursive,
            dataset,
            split,
            max_images,
            strategy,
            budget,
            share,
            preset,
            admin_token,
        ],
        [report, project],
        api_visibility="private",
    )
