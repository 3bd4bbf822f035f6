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

from common.paths import PathRefused, gate, slug
from ranker.errors import StudioError
from ui.context import StudioContext
from ui.policy import uploaded_path

DATASET_EXPORTS = {
    "parquet": "Parquet dataset folder (load_dataset-ready, with card; each image once)",
    "parquet-embedded": "Pick-a-Pic-style Parquet pairs, both images in every row (large)",
    "joyquality": "JoyQuality training JSON + images (winner first, ties left out)",
    "trl": "TRL chosen/rejected Parquet (ties left out)",
}
PREVIEW_ROWS = 20


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
    from prefdata.card import dataset_card
    from prefdata.tables import build_tables

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
    """Write the export in a fresh unguessable folder and return the path of its zip."""
    from prefdata.joyquality_json import export_joyquality
    from prefdata.ours import build_preference_dataset, save_parquet
    from prefdata.pickapic import export_embedded
    from prefdata.trl import export_trl

    if fmt not in DATASET_EXPORTS:
        raise gr.Error(f"format must be one of {', '.join(DATASET_EXPORTS)}")
    session = _session(ctx, project)
    try:
        ds = build_preference_dataset(session, float(test_fraction), int(seed), labelers)
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc
    from ui.exports import new_export_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = new_export_dir(ctx) / f"{slug(project)}-{fmt}-{stamp}"
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
    from prefdata.hub import push_dataset

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
    owner: bool = True,
) -> str:
    """Import a Hub dataset (repo id), a local path inside the allowed roots, or uploaded
    Parquet/JSON/zip files into a project. A refused import leaves no files behind."""
    from prefdata.project_import import import_dataset

    if files is not None and not isinstance(files, list):
        raise gr.Error("files must be a list of uploaded files")
    if source is not None and not isinstance(source, str):
        raise gr.Error("the dataset source must be text (a repo id or a path)")
    uploads = [uploaded_path(f) for f in files or []]
    sources = uploads or (
        [_source(ctx, source.strip(), owner)] if source and source.strip() else []
    )
    if not sources:
        raise gr.Error("give a Hub dataset repo id or upload a Parquet, JSON or zip file")
    name = (project or "").strip() or None
    images_dir = ctx.uploads_dir / "imported" / slug(name or Path(sources[0]).stem)
    fresh = not images_dir.exists()
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
    except Exception as exc:
        if fresh and not lines:
            shutil.rmtree(images_dir, ignore_errors=True)
        for path in uploads:  # a rejected upload is not kept
            Path(path).unlink(missing_ok=True)
        raise gr.Error(_import_fault(exc)) from exc
    embedded = _embed_new_images(ctx, name)  # after: the import itself is done and kept
    return "\n\n".join([*(f"```\n{line}\n```" for line in lines), *embedded])


def _embed_new_images(ctx: StudioContext, project: str | None) -> list[str]:
    """A project with a model attached: embed the images the import added (or name
    those that wait). The votes are imported either way."""
    from ui.ranking.model_panel import embed_after_intake

    if not project:
        return []
    text = embed_after_intake(ctx, ctx.studio.project(project))
    return [text] if text else []


HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _source(ctx: StudioContext, source: str, owner: bool) -> str:
    """A typed source: a Hub repo id, or a local path that passes the path gate."""
    if HUB_ID.match(source) and not Path(source).expanduser().exists():
        return source
    try:
        return str(gate(source, ctx.allowed_roots, owner=owner, base=Path.cwd()))
    except PathRefused as exc:
        raise gr.Error(f"{exc} (or give a Hub dataset id like user/name)") from None


def _import_fault(exc: Exception) -> str:
    """What the importer says about a file it could not read, never a blank error."""
    if isinstance(exc, StudioError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "the file nests too deeply to be a dataset"
    if isinstance(exc, UnicodeDecodeError | ValueError):
        return f"the file could not be read as a dataset ({type(exc).__name__}: {str(exc)[:200]})"
    return f"the import failed ({type(exc).__name__}: {str(exc)[:200]})"


def backup_status(ctx: StudioContext) -> str:
    from prefdata.backup_hub import backup_status as status

    return status(ctx)


def backup_now(ctx: StudioContext) -> str:
    from prefdata.backup_hub import current_backup

    backup = current_backup(ctx)
    if backup is None:
        return backup_status(ctx)
    future = backup.push_now()
    if future is not None:
        with contextlib.suppress(Exception):  # the scheduler recorded it in the status
            future.result(timeout=600)
    return backup_status(ctx)
