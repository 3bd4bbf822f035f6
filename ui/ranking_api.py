"""Named API endpoints of the Ranking tab, for ``gradio_client`` and plain HTTP.

Every action takes explicit arguments (project, labeler, pair id, ...), never page
state, so a script can label, read the leaderboard or export as well as the page.
``vote`` answers with the next pair, so a labeling client needs one call per vote.

This module deliberately avoids ``from __future__ import annotations``: ``gr.api``
reads the return annotations as real types to describe the endpoints.
"""

import contextlib

import gradio as gr

from ranker.errors import StudioError
from ranker.results import DEFAULT_ORDER
from ui.context import StudioContext
from ui.identity import IdentityError
from ui.ranking_actions import (
    create_project,
    export_project,
    parse_settings,
    require_owner,
)
from ui.ranking_core import RankingDesk

MAX_LABELER = 120


def check_labeler(labeler: str) -> str:
    """API labelers: any short name without '#' (kept for the look-ahead slot)."""
    labeler = (labeler or "").strip()
    if not labeler:
        raise IdentityError("give a labeler name (who is voting)")
    if "#" in labeler or len(labeler) > MAX_LABELER:
        raise IdentityError(f"labeler names have no '#' and at most {MAX_LABELER} characters")
    return labeler


def _uploaded_paths(files: list | None) -> list[str]:
    """Paths of files a client uploaded: only Gradio's upload folder is accepted."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    out = []
    for f in files or []:
        path = f.get("path") if isinstance(f, dict) else str(f)
        if not path or not is_in_or_equal(path, get_upload_folder()):
            raise StudioError("files must be uploaded with the request (gradio_client handle_file)")
        out.append(path)
    return out


@contextlib.contextmanager
def user_errors():
    """Show a StudioError's message to the caller (gr.Error) instead of 'Error'."""
    try:
        yield
    except (StudioError, IdentityError) as exc:
        raise gr.Error(str(exc)) from exc


def _username(profile) -> str | None:
    return getattr(profile, "username", None) if profile is not None else None


def register_api(ctx: StudioContext, desk: RankingDesk) -> None:
    """Declare the endpoints inside the current Blocks."""

    def list_projects() -> list:
        """Every project: name, instruction, settings, image and vote counts."""
        with user_errors():
            out = []
            for row in ctx.studio.list_projects():
                progress = ctx.studio.project(row.name).progress()
                out.append(
                    {
                        "name": row.name,
                        "instruction": row.instruction,
                        "settings": row.settings,
                        "images": progress.images,
                        "votes": progress.votes,
                    }
                )
            return out

    def create(
        name: str,
        instruction: str = "",
        files: list | None = None,
        folder: str = "",
        dataset_id: str = "",
        strategy: str = "active",
        budget: int = 0,
        rating_preset: str = "image_ranker",
        random_share: float = 0.5,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> str:
        """Create a project from uploaded files/zips (handle_file), a local folder inside
        the allowed roots, or a Hub dataset id; owner only. Returns the intake summary."""
        with user_errors():
            require_owner(ctx, admin_token, _username(profile))
            settings = parse_settings(strategy, budget, rating_preset, random_share)
            return create_project(
                ctx,
                name,
                instruction,
                files=_uploaded_paths(files),
                folder=folder,
                dataset_id=dataset_id,
                settings=settings,
            )

    def next_pair(project: str, labeler: str) -> dict:
        """The labeler's open pair (the same one until answered), with display URLs."""
        with user_errors():
            return _with_progress(desk.view(project, check_labeler(labeler)))

    def vote(project: str, labeler: str, pair_id: str, outcome: str) -> dict:
        """Answer pair ``pair_id`` with left, right or tie; returns the next pair.
        A second answer to the same pair is not counted (see ``message``)."""
        with user_errors():
            return _with_progress(desk.vote(project, check_labeler(labeler), pair_id, outcome))

    def skip(project: str, labeler: str, pair_id: str) -> dict:
        """Skip pair ``pair_id``; returns the next pair."""
        with user_errors():
            return _with_progress(desk.skip(project, check_labeler(labeler), pair_id))

    def undo(project: str, labeler: str) -> dict:
        """Undo this labeler's latest vote; returns its pair (same sides, a new pair id)
        to answer again, or the current pair when there was nothing to undo."""
        with user_errors():
            return _with_progress(desk.undo(project, check_labeler(labeler)))

    def leaderboard(project: str, order: str = DEFAULT_ORDER) -> list:
        """Rows best first: rank, uid, name, mu, sigma, conservative, wins, losses, ties,
        comparisons, excluded, exclusion_reason. ``order``: auto (default), conservative,
        mu or refit."""
        with user_errors():
            session = desk.session(project)
            rows = session.leaderboard(order)
            for row in rows:
                row.pop("path", None)  # server paths stay on the server
                row["name"] = session.image(row["uid"]).name
            return rows

    def export(
        project: str,
        fmt: str = "json",
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> str:
        """Export text (owner only): json, csv, image_ranker_comparisons or
        image_ranker_rankings."""
        with user_errors():
            require_owner(ctx, admin_token, _username(profile))
            return export_project(ctx, desk.session(project), fmt)[0]

    def _with_progress(view) -> dict:
        out = view.as_dict()
        p = desk.session(view.project).progress()
        out["progress"] = {
            "votes": p.votes,
            "budget": p.budget,
            "images": p.images,
            "confidence": round(p.confidence, 4),
            "done": p.done,
        }
        return out

    for fn, api_name in (
        (list_projects, "list_projects"),
        (create, "create_project"),
        (next_pair, "next_pair"),
        (vote, "vote"),
        (skip, "skip"),
        (undo, "undo"),
        (leaderboard, "leaderboard"),
        (export, "export"),
    ):
        gr.api(fn, api_name=api_name, concurrency_limit=None, concurrency_id="ranking-api")
