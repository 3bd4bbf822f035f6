"""What the Dataset tab does, as plain functions of the app context.

The tab and its API endpoints call these; errors come back as ``gr.Error`` with the
adapter's message (which says whether the token, the network or the input failed).
The Hub/``datasets`` adapters are imported inside the functions, so importing the
app stays cheap.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from pathlib import Path

import gradio as gr

from ranker.errors import StudioError
from ui.context import StudioContext
from ui.identity import is_owner, owner_error

EXPORT_FORMATS = {
    "parquet": "Parquet dataset folder (load_dataset-ready, with card; each image once)",
    "parquet-embedded": "Pick-a-Pic-style Parquet pairs, both images in every row (large)",
    "joyquality": "JoyQuality training JSON + images (winner first, ties left out)",
    "trl": "TRL chosen/rejected Parquet (ties left out)",
}
PREVIEW_ROWS = 20


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "project"


def require_owner(ctx: StudioContext, admin_token: str | None, profile) -> None:
    username = getattr(profile, "username", None) if profile is not None else None
    if not is_owner(ctx, admin_token, username):
        raise gr.Error(owner_error(ctx))


def _session(ctx: StudioContext, project: str):
    if not project:
        raise gr.Error("choose a project first")
    try:
        return ctx.studio.project(project)
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc


def preview(
    ctx: StudioContext, project: str, test_fraction: float, seed: int, labelers: str
) -> tuple[str, list[list], str]:
    """Counts, the first rows of each split, and the dataset card; nothing is written."""
    from ranker.dataset import build_tables
    from ranker.dataset_card import dataset_card

    try:
        tables = build_tables(_session(ctx, project), float(test_fraction), int(seed), labelers)
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc
    r = tables.report
    summary = (
        f"**{len(tables.votes)} votes** → {r.summary()}. "
        f"{r.voted_images} images with votes, {r.unvoted_images} without; "
        f"labelers: {len(tables.labelers) if labelers != 'drop' else 'not published'}."
    )
    notes = r.split_notes()
    if notes:
        summary += "\n\n" + "\n".join(f"- {note}" for note in notes)
    rows = [
        [
            split,
            p["image_0_uid"],
            p["image_1_uid"],
            p["label_0"],
            p["label_1"],
            p["labeler"],
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(p["created_at"])),
        ]
        for split in ("train", "test")
        for p in tables.pairs[split][:PREVIEW_ROWS]
    ]
    return summary, rows, card_preview(dataset_card(tables))


def card_preview(card: str) -> str:
    """The card as Markdown for the page: its YAML front matter shown as a YAML block.

    Markdown has no front matter: rendered as it is, the header's ``- config_name``
    lines become a jumbled bullet list and the ``---`` fences rules.

    >>> print(card_preview("---\\ntags:\\n- a\\n---\\n# Title"))
    ```yaml
    tags:
    - a
    ```
    <BLANKLINE>
    # Title
    """
    if card.startswith("---\n"):
        header, sep, body = card[4:].partition("\n---\n")
        if sep:
            return f"```yaml\n{header}\n```\n\n{body.lstrip(chr(10))}"
    return card


def export(
    ctx: StudioContext, project: str, fmt: str, test_fraction: float, seed: int, labelers: str
) -> str:
    """Write the export under ``exports_dir`` and return the path of its zip."""
    from ranker.preference_dataset import (
        build_preference_dataset,
        export_embedded,
        export_joyquality,
        export_trl,
        save_parquet,
    )

    if fmt not in EXPORT_FORMATS:
        raise gr.Error(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    session = _session(ctx, project)
    try:
        ds = build_preference_dataset(session, float(test_fraction), int(seed), labelers)
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = ctx.exports_dir / f"{_slug(project)}-{fmt}-{stamp}"
    if fmt == "parquet":
        save_parquet(ds, folder)
    elif fmt == "parquet-embedded":
        export_embedded(ds, folder)
    elif fmt == "joyquality":
        export_joyquality(ds, folder, relative_paths=True)
    else:
        export_trl(ds, folder)
    archive = shutil.make_archive(str(folder), "zip", folder)
    shutil.rmtree(folder)
    return archive


def push(
    ctx: StudioContext,
    project: str,
    repo_id: str,
    private: bool,
    commit_message: str,
    test_fraction: float,
    seed: int,
    labelers: str,
    oauth_token: str | None = None,
) -> str:
    """Publish to the Hub with the user's OAuth token (on a Space) or the HF_TOKEN secret."""
    from ranker.hub import push_dataset

    session = _session(ctx, project)
    try:
        result = push_dataset(
            session,
            repo_id,
            private=bool(private),
            commit_message=commit_message or None,
            token=oauth_token,
            test_fraction=float(test_fraction),
            seed=int(seed),
            labelers=labelers,
        )
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc
    return f"Pushed to [{result.repo_id}]({result.url}): {result.report.summary()}."


def import_into(
    ctx: StudioContext,
    source: str,
    files: list | None,
    project: str,
    split: str,
    oauth_token: str | None = None,
) -> str:
    """Import a Hub dataset (repo id) or uploaded Parquet/JSON/zip files into a project."""
    from ranker.dataset_import import import_dataset

    sources = [_upload_path(f) for f in files or []] or ([source.strip()] if source else [])
    if not sources:
        raise gr.Error("give a Hub dataset repo id or upload a Parquet, JSON or zip file")
    name = (project or "").strip() or None
    images_dir = ctx.uploads_dir / "imported" / _slug(name or Path(sources[0]).stem)
    lines = []
    try:
        for src in sources:
            report = import_dataset(
                ctx.studio,
                src,
                images_dir=images_dir,
                project=name,
                token=oauth_token,
                split=(split or "").strip() or None,
            )
            name = report.project  # several files go into one project, in order
            lines.append(report.summary())
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc
    return "\n\n".join(f"```\n{line}\n```" for line in lines)


def _upload_path(f) -> str:
    from gradio.utils import get_upload_folder, is_in_or_equal

    path = f.get("path") if isinstance(f, dict) else str(f)
    if not path or not is_in_or_equal(path, get_upload_folder()):
        raise gr.Error("files must be uploaded with the request (gradio_client handle_file)")
    return path


def backup_status(ctx: StudioContext) -> str:
    from ranker.backup_hub import backup_status as status

    return status(ctx)


def backup_now(ctx: StudioContext) -> str:
    from ranker.backup_hub import current_backup

    backup = current_backup(ctx)
    if backup is None:
        return backup_status(ctx)
    future = backup.push_now()
    if future is not None:
        with contextlib.suppress(Exception):  # the scheduler recorded it in the status
            future.result(timeout=600)
    return backup_status(ctx)
