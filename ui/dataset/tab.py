"""The Dataset tab: preview, export and publish a project's votes; import datasets; backup.

Every action is a named API endpoint (``/dataset_preview``, ``/dataset_export``,
``/dataset_push``, ``/dataset_import``, ``/backup_status``, ``/backup_now``), so a
script does what the page does. Exports, pushes, imports and "back up now" need
the owner (admin token, or the logged-in Space author; the local user when no token
is configured). The Hub/``datasets`` adapters are imported inside the handlers, so
importing this module (and ``app``) stays cheap.
"""

from __future__ import annotations

import gradio as gr

from common.contracts import LABELER_POLICIES
from ranker.errors import StudioError
from ui.context import StudioContext
from ui.dataset.desk import (
    DATASET_EXPORTS,
    backup_now,
    backup_status,
    export,
    import_into,
    preview,
    push,
)
from ui.policy import prefill_token, require

PREVIEW_HEADERS = [
    "split",
    "image_0_uid",
    "image_1_uid",
    "label_0",
    "label_1",
    "labeler",
    "created_at",
]


# --- layout --------------------------------------------------------------------------------
def build_dataset_tab(ctx: StudioContext) -> None:
    """Build the tab inside the current Blocks (called within ``gr.Tab("Dataset")``)."""
    from gradio.context import Context

    def names() -> list[str]:
        try:
            return [p.name for p in ctx.studio.list_projects()]
        except StudioError:
            return []

    with gr.Row():
        project = gr.Dropdown(names(), label="Project", allow_custom_value=True, scale=3)
        refresh = gr.Button("↻", scale=0, min_width=40)
    with gr.Row():
        test_fraction = gr.Slider(
            0,
            0.5,
            value=0.1,
            step=0.01,
            label="Test share of images",
            info="split by image: no test image is in any training pair; raised for a "
            "small project to keep 10 test pairs (the preview says so)",
        )
        seed = gr.Number(0, precision=0, label="Split seed")
        labelers = gr.Radio(
            list(LABELER_POLICIES),
            value="publish",
            label="Labeler names",
            info="publish, hash (pseudonyms) or drop",
        )
    preview_btn = gr.Button("Preview", variant="primary")
    summary = gr.Markdown()
    rows = gr.Dataframe(headers=PREVIEW_HEADERS, interactive=False, label="First rows")
    with gr.Accordion("Dataset card (README)", open=False):
        card = gr.Markdown()

    admin_token = gr.Textbox(label="Admin token", type="password", visible=bool(ctx.admin_token))
    with gr.Accordion("Export", open=False):
        with gr.Row():
            fmt = gr.Dropdown(
                list(DATASET_EXPORTS),
                value="parquet",
                label="Format",
                info="; ".join(f"{k}: {v}" for k, v in DATASET_EXPORTS.items()),
            )
            export_btn = gr.Button("Export")
        export_file = gr.File(label="Download", interactive=False)
    with gr.Accordion("Publish to the Hugging Face Hub", open=False):
        with gr.Row():
            repo_id = gr.Textbox(label="Dataset repo id", placeholder="user/my-preferences")
            private = gr.Checkbox(True, label="Private")
        message = gr.Textbox(label="Commit message", placeholder="(a summary of the counts)")
        push_btn = gr.Button("Push", variant="primary")
        push_status = gr.Markdown()
    with gr.Accordion("Import a preference dataset", open=False):
        gr.Markdown(
            "Ours, Pick-a-Pic style (`jpg_0`/`jpg_1` or `image_0`/`image_1` with "
            "`label_0`/`label_1`), TRL `chosen`/`rejected`, or JoyQuality JSON. "
            "Into a new project, or appended (without repeats) to an existing one."
        )
        with gr.Row():
            source = gr.Textbox(label="Hub dataset repo id", placeholder="user/dataset")
            split = gr.Textbox(label="Only this split (optional)", placeholder="train")
            target = gr.Textbox(label="Project name (default: from the dataset)")
        files = gr.File(
            label="…or upload Parquet / JSON / zip",
            file_count="multiple",
            file_types=[".parquet", ".json", ".zip"],
        )
        import_btn = gr.Button("Import")
        import_status = gr.Markdown()
    with gr.Accordion("Live backup", open=False):
        backup_md = gr.Markdown()
        backup_btn = gr.Button("Back up now")

    settings = [project, test_fraction, seed, labelers]

    def on_preview(
        project_, fraction, seed_, labelers_, token=None, profile: gr.OAuthProfile | None = None
    ):
        caller = require(ctx, "dataset_preview", token, profile)
        if not caller.owner and labelers_ == "publish":
            labelers_ = "hash"  # visitors see pseudonyms, never raw labeler ids
        return preview(ctx, project_, fraction, seed_, labelers_)

    def on_export(
        project_, fmt_, fraction, seed_, labelers_, token, profile: gr.OAuthProfile | None = None
    ):
        require(ctx, "dataset_export", token, profile)
        return export(ctx, project_, fmt_, fraction, seed_, labelers_)

    def on_push(
        project_,
        repo,
        private_,
        message_,
        fraction,
        seed_,
        labelers_,
        token,
        profile: gr.OAuthProfile | None = None,
        oauth: gr.OAuthToken | None = None,
    ):
        require(ctx, "dataset_push", token, profile)
        return push(
            ctx,
            project_,
            repo,
            private_,
            message_,
            fraction,
            seed_,
            labelers_,
            getattr(oauth, "token", None),
        )

    def on_import(
        source_,
        files_,
        target_,
        split_,
        token,
        profile: gr.OAuthProfile | None = None,
        oauth: gr.OAuthToken | None = None,
    ):
        caller = require(ctx, "dataset_import", token, profile)
        return import_into(
            ctx, source_, files_, target_, split_, getattr(oauth, "token", None), caller.owner
        )

    def on_backup_now(token, profile: gr.OAuthProfile | None = None):
        require(ctx, "backup_now", token, profile)
        return backup_now(ctx)

    def on_backup_status():
        require(ctx, "backup_status")
        return backup_status(ctx)

    def on_refresh(current):
        require(ctx, "dataset.tab.on_refresh")
        choices = names()
        return gr.update(
            choices=choices,
            value=current if current in choices else (choices[0] if choices else None),
        )

    preview_btn.click(
        on_preview, [*settings, admin_token], [summary, rows, card], api_name="dataset_preview"
    )
    export_btn.click(
        on_export,
        [project, fmt, test_fraction, seed, labelers, admin_token],
        export_file,
        api_name="dataset_export",
        concurrency_limit=2,
    )
    push_btn.click(
        on_push,
        [project, repo_id, private, message, test_fraction, seed, labelers, admin_token],
        push_status,
        api_name="dataset_push",
        concurrency_limit=1,
    )
    import_btn.click(
        on_import,
        [source, files, target, split, admin_token],
        import_status,
        api_name="dataset_import",
        concurrency_limit=1,
        concurrency_id="dataset-import",
    ).then(on_refresh, project, project, api_visibility="private")
    backup_btn.click(
        on_backup_now, admin_token, backup_md, api_name="backup_now", concurrency_limit=1
    )
    refresh.click(on_refresh, project, project, api_visibility="private")
    status_btn = gr.Button(visible=False)
    status_btn.click(on_backup_status, None, backup_md, api_name="backup_status")
    Context.root_block.load(on_backup_status, None, backup_md, api_visibility="private")
    prefill_token(admin_token)
    Context.root_block.load(on_refresh, project, project, api_visibility="private")
