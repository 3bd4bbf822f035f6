"""Project-level actions shared by the page and the API: create, settings, exports.

Each function takes plain values, checks ownership where the action needs it, and
raises :class:`ranker.errors.StudioError` with a message meant for the user.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ranker.errors import StudioError
from ui.context import StudioContext
from ui.ranking_sources import add_hub_dataset, add_uploads, allowed_folder, new_upload_dir

EXPORT_FORMATS = {
    "json": ("export_json", ".json"),
    "csv": ("export_csv", ".csv"),
    "image_ranker_comparisons": ("export_ir_comparisons", "-comparisons.csv"),
    "image_ranker_rankings": ("export_ir_rankings", "-image_rankings.csv"),
}


def parse_settings(
    strategy: str | None = None,
    budget: float | int | None = None,
    rating_preset: str | None = None,
    random_share: float | None = None,
    exclusion_reasons: str | dict | None = None,
) -> dict:
    """Project settings from form/API values; blank values are left out (engine defaults)."""
    settings: dict = {}
    if strategy:
        settings["strategy"] = strategy
    if budget is not None and budget != "":
        b = int(budget)
        if b < 0:
            raise StudioError("the comparison budget must be 0 (none) or a positive number")
        settings["budget"] = b or None
    if rating_preset:
        settings["rating_preset"] = rating_preset
    if random_share is not None and random_share != "":
        share = float(random_share)
        if not 0 <= share <= 1:
            raise StudioError("the random share must be between 0 and 1")
        settings["random_share"] = share
    if exclusion_reasons:
        settings["exclusion_reasons"] = parse_reasons(exclusion_reasons)
    return settings


def parse_reasons(text: str | dict) -> dict[str, str]:
    """Exclusion reasons as key -> label, from a dict, JSON, or 'key: label' lines."""
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StudioError(f"exclusion reasons are not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise StudioError("exclusion reasons must be an object of key -> label")
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for line in text.splitlines():
        if line.strip():
            key, _, label = line.partition(":")
            out[key.strip()] = (label or key).strip()
    return out


def exclusion_reasons(ctx: StudioContext, session) -> dict[str, str]:
    """The project's reasons, else those of ``EXCLUSION_REASONS_FILE``, else none."""
    reasons = session.settings.get("exclusion_reasons") or {}
    return dict(reasons) if reasons else file_reasons(ctx)


def file_reasons(ctx: StudioContext) -> dict[str, str]:
    """Reasons from ``EXCLUSION_REASONS_FILE`` (key -> label); none if unset or unreadable."""
    path = ctx.exclusion_reasons_file
    if not path or not Path(path).is_file():
        return {}
    try:
        return parse_reasons(json.loads(Path(path).read_text(encoding="utf-8-sig")))
    except (json.JSONDecodeError, StudioError, OSError):
        return {}


def create_project(
    ctx: StudioContext,
    name: str,
    instruction: str = "",
    *,
    files: list[str] | None = None,
    folder: str = "",
    recursive: bool = False,
    dataset_id: str = "",
    split: str = "train",
    max_images: int = 500,
    settings: dict | None = None,
) -> str:
    """Create a project from one or more sources; returns the intake summary.

    A project that would end up with no images is not kept.
    """
    name = (name or "").strip()
    if not name:
        raise StudioError("give the project a name")
    if len(name) > 100:
        raise StudioError("project names are limited to 100 characters")
    if not (files or folder or dataset_id):
        raise StudioError("add images: upload files or a zip, a local folder, or a dataset id")
    folder_path = allowed_folder(ctx, folder) if folder else None
    studio = ctx.studio
    session = studio.create_project(name, instruction or None, **(settings or {}))
    dest = new_upload_dir(ctx, name) if files or dataset_id else None
    reports = []
    try:
        if files:
            reports.append(add_uploads(session, files, dest))
        if folder_path is not None:
            reports.append(session.add_folder(folder_path, recursive=recursive))
        if dataset_id:
            reports.append(add_hub_dataset(session, dest, dataset_id, split, max_images))
        if not session.images:
            details = "\n".join(r.summary() for r in reports)
            raise StudioError(f"no readable images were found; nothing was created.\n{details}")
    except BaseException:
        studio.delete_project(name)
        if dest is not None:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return "\n".join(r.summary() for r in reports)


def export_project(ctx: StudioContext, session, fmt: str) -> tuple[str, Path]:
    """(text, file) of an export; the file sits under an unguessable, expiring folder."""
    from ranker import exchange

    if fmt not in EXPORT_FORMATS:
        raise StudioError(f"export format must be one of {', '.join(EXPORT_FORMATS)}")
    func, suffix = EXPORT_FORMATS[fmt]
    text = getattr(exchange, func)(session)
    from ui.exports import new_export_dir

    folder = new_export_dir(ctx)
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in session.name)
    path = folder / f"{slug}{suffix}"
    path.write_text(text, encoding="utf-8")
    return text, path
