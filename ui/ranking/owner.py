"""Owner tools: settings, exclusion, labelers, exports and deletion.

Every handler checks ownership (admin token, or the logged-in Space author; the
local user when no token is configured) before it touches anything.
"""

from __future__ import annotations

import json

import gradio as gr

from ranker.errors import StudioError
from ui.context import StudioContext
from ui.policy import require
from ui.ranking.desk import RankingDesk
from ui.ranking.labelers import AGREEMENT_NOTE, STATS_HEADERS, labeler_stats, stats_table
from ui.ranking.panels import presets, strategies
from ui.ranking.projects import (
    PROJECT_EXPORTS,
    check_instruction,
    exclusion_reasons,
    export_project,
    file_reasons,
    parse_settings,
)
from ui.ranking.view import pair_html


def build_owner_tools(
    ctx: StudioContext,
    desk: RankingDesk,
    project: gr.Dropdown,
    labeler: gr.State,
    pair_id: gr.Textbox,
    admin_token: gr.Textbox,
    view: gr.HTML,
) -> None:
    with gr.Accordion("Owner tools", open=False, elem_id="ps-owner"):
        note = "Settings, exclusion, exports and deletion need the owner: " + (
            "type the admin token."
            if ctx.admin_token
            else "log in as the Space author."
            if ctx.on_space
            else "you are the owner (no admin token is configured)."
        )
        gr.Markdown(note)
        admin_token.render()
        status = gr.Markdown(elem_id="ps-owner-status")
        with gr.Row():
            reason = gr.Dropdown(
                [(v, k) for k, v in file_reasons(ctx).items()],
                value=None,
                label="Exclusion reason",
                allow_custom_value=True,
                scale=2,
            )
            ex_left = gr.Button("Exclude A (left)", scale=1)
            ex_right = gr.Button("Exclude B (right)", scale=1)
        with gr.Accordion("Settings", open=False):
            instruction = gr.Textbox(label="Instruction")
            with gr.Row():
                strategy = gr.Dropdown(strategies(), label="Pair selection")
                budget = gr.Number(precision=0, label="Comparison budget (0 = none)")
                share = gr.Slider(0, 1, step=0.05, label="Random share (budget strategy)")
                preset = gr.Dropdown(
                    presets(), label="Rating preset", info="changing it replays every vote"
                )
            reasons = gr.Code(label="Exclusion reasons (JSON: key -> label)", language="json")
            with gr.Row():
                load_settings = gr.Button("Load settings")
                save = gr.Button("Save settings", variant="primary")
        with gr.Accordion("Labelers", open=False):
            stats_btn = gr.Button("Show labelers")
            gr.Markdown(AGREEMENT_NOTE)
            stats = gr.Dataframe(headers=STATS_HEADERS, interactive=False)
        with gr.Row():
            fmt = gr.Dropdown(list(PROJECT_EXPORTS), value="json", label="Export format")
            export_btn = gr.Button("Export")
            export_file = gr.File(label="Export", interactive=False)
        with gr.Row():
            confirm = gr.Textbox(label="Type the project name to delete it", max_lines=1)
            delete = gr.Button("Delete project", variant="stop")

    def on_settings(project_, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.owner.on_settings", token, profile)
            s = desk.session(project_)
        except StudioError as exc:
            return str(exc), *([gr.update()] * 7)
        st = s.settings
        rs = exclusion_reasons(ctx, s)
        return (
            "",
            s.row.instruction,
            st["strategy"],
            st.get("budget") or 0,
            st.get("random_share", 0.5),
            st["rating_preset"],
            json.dumps(rs, indent=1),
            gr.update(choices=[(v, k) for k, v in rs.items()]),
        )

    def on_save(
        project_,
        instruction_,
        strategy_,
        budget_,
        share_,
        preset_,
        reasons_,
        token,
        profile: gr.OAuthProfile | None,
    ):
        try:
            require(ctx, "ranking.owner.on_save", token, profile)
            settings = parse_settings(strategy_, budget_, preset_, share_, reasons_ or "{}")
            settings.setdefault("exclusion_reasons", {})
            desk.session(project_).update(check_instruction(instruction_), **settings)
        except (StudioError, ValueError) as exc:
            return f"Not saved: {exc}"
        return "Saved."

    def on_exclude(side: str):
        def exclude(project_, who, pid, reason_, token, profile: gr.OAuthProfile | None):
            try:
                require(ctx, "ranking.owner.exclude", token, profile)
                current = desk.view(project_, who)
                if current.pair_id != pid or current.left is None:
                    raise StudioError("the pair changed; try again")
                uid = (current.left if side == "left" else current.right).uid
                v = desk.exclude(project_, who, uid, reason_)
            except StudioError as exc:
                return str(exc), gr.update(), gr.update()
            return "", pair_html(v, ctx.sound_enabled), v.pair_id or ""

        return exclude

    def on_stats(project_, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.owner.on_stats", token, profile)
            s = desk.session(project_)
        except StudioError as exc:
            return str(exc), None
        skips = s.store.skips(s.row.id)
        return "", stats_table(labeler_stats(s.votes(), skips))

    def on_export(project_, fmt_, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.owner.on_export", token, profile)
            _, path = export_project(ctx, desk.session(project_), fmt_)
        except StudioError as exc:
            return str(exc), None
        return f"Exported {path.name}.", str(path)

    def on_delete(project_, confirm_, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.owner.on_delete", token, profile)
            if (confirm_ or "").strip() != project_:
                raise StudioError("type the project's exact name to confirm deletion")
            ctx.studio.delete_project(project_)
            desk.forget(project_)
        except StudioError as exc:
            return str(exc), gr.update(), gr.update()
        names = desk.project_names()
        return (
            f"Deleted {project_!r} (its votes are gone; the image files were not touched).",
            gr.update(choices=names, value=names[0] if names else None),
            "",
        )

    private = {"api_visibility": "private"}
    settings_out = [status, instruction, strategy, budget, share, preset, reasons, reason]
    load_settings.click(on_settings, [project, admin_token], settings_out, **private)
    save.click(
        on_save,
        [project, instruction, strategy, budget, share, preset, reasons, admin_token],
        [status],
        **private,
    )
    for button, side in ((ex_left, "left"), (ex_right, "right")):
        button.click(
            on_exclude(side),
            [project, labeler, pair_id, reason, admin_token],
            [status, view, pair_id],
            **private,
        )
    stats_btn.click(on_stats, [project, admin_token], [status, stats], **private)
    export_btn.click(on_export, [project, fmt, admin_token], [status, export_file], **private)
    delete.click(on_delete, [project, confirm, admin_token], [status, project, confirm], **private)
