"""Project-level actions shared by the page and the API: create, settings, exports.

Each function takes plain values, checks ownership where the action needs it, and
raises :class:`ranker.errors.StudioError` with a message meant for the user.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from common.paths import slug
from prefdata import imageranker_csv, project_json
from ranker.errors import StudioError
from ui.context import StudioContext
from ui.ranking.sources import add_hub_dataset, add_uploads, allowed_folder, new_upload_dir

PROJECT_EXPORTS = {
    "json": (project_json.export_json, ".json"),
    "csv": (project_json.export_csv, ".csv"),
    "image_ranker_comparisons": (imageranker_csv.export_ir_comparisons, "-comparisons.csv"),
    "image_ranker_rankings": (imageranker_csv.export_ir_rankings, "-image_rankings.csv"),
}
"""One project's exchange files (the Dataset tab's ``DATASET_EXPORTS`` are whole datasets)."""


MAX_BUDGET = 10**9  # comparisons; more is a typo (or 1e308)
MAX_INSTRUCTION = 2000  # characters; the instruction travels with every pair


def parse_settings(
    strategy: str | None = None,
    budget: float | int | None = None,
    rating_preset: str | None = None,
    random_share: float | None = None,
    exclusion_reasons: str | dict | None = None,
) -> dict:
    """Project settings from form/API values; blank values are left out (engine defaults).

    Everything is checked here, at the boundary: names against the known strategies
    and presets, numbers for type, NaN/infinity and size, so a caller gets a message
    naming the fault rather than a failure deep inside.
    """
    from ranker.ratings import PRESETS
    from ranker.selection import STRATEGIES

    settings: dict = {}
    if strategy:
        if strategy not in STRATEGIES:
            raise StudioError(f"unknown strategy {str(strategy)[:60]!r}; choose one of "
                              f"{', '.join(STRATEGIES)}")  # fmt: skip
        settings["strategy"] = strategy
    if budget is not None and budget != "":
        b = _number(budget, "the comparison budget")
        if b < 0 or b > MAX_BUDGET or not float(b).is_integer():
            raise StudioError(
                f"the comparison budget must be 0 (none) or a whole number up to {MAX_BUDGET:,}"
            )
        settings["budget"] = int(b) or None
    if rating_preset:
        if rating_preset not in PRESETS:
            raise StudioError(f"unknown rating preset {str(rating_preset)[:60]!r}; choose one "
                              f"of {', '.join(PRESETS)}")  # fmt: skip
        settings["rating_preset"] = rating_preset
    if random_share is not None and random_share != "":
        share = _number(random_share, "the random share")
        if not 0 <= share <= 1:
            raise StudioError("the random share must be between 0 and 1")
        settings["random_share"] = share
    if exclusion_reasons:
        settings["exclusion_reasons"] = parse_reasons(exclusion_reasons)
    return settings


def _number(value: object, what: str) -> float:
    """A finite number from a form/API value, or StudioError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise StudioError(f"{what} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise StudioError(f"{what} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise StudioError(f"{what} must be a finite number (no NaN or infinity)")
    return number


def check_instruction(text: object) -> str | None:
    """The instruction shown with every pair: text, at most ``MAX_INSTRUCTION`` characters."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise StudioError(f"the instruction must be text, not {type(text).__name__}")
    if len(text) > MAX_INSTRUCTION:
        raise StudioError(
            f"the instruction has {len(text):,} characters; at most {MAX_INSTRUCTION:,} "
            "are shown with every pair"
        )
    return text


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
    if name is not None and not isinstance(name, str):
        raise StudioError(f"the project name must be text, not {type(name).__name__}")
    name = (name or "").strip()
    if not name:
        raise StudioError("give the project a name")
    instruction = check_instruction(instruction)
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
    if fmt not in PROJECT_EXPORTS:
        raise StudioError(f"export format must be one of {', '.join(PROJECT_EXPORTS)}")
    func, suffix = PROJECT_EXPORTS[fmt]
    text = func(session)
    from ui.exports import new_export_dir

    folder = new_export_dir(ctx)
    path = folder / f"{slug(session.name)}{suffix}"
    path.write_text(text, encoding="utf-8")
    return text, path
