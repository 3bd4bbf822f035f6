"""Named API endpoints of the Ranking tab, for ``gradio_client`` and plain HTTP.

Every action takes explicit arguments (project, labeler key, pair id, ...), never
page state, so a script can label, read the leaderboard or export as well as the
page. A script first calls ``/join`` for a labeler key (:mod:`ui.identity`); the
roles each endpoint needs are declared in :mod:`ui.policy`. ``vote`` answers with
the next pair, so a labeling client needs one call per vote.

This module deliberately avoids ``from __future__ import annotations``: ``gr.api``
reads the return annotations as real types to describe the endpoints.
"""

import contextlib

import gradio as gr

from ranker.errors import StudioError
from ranker.results import DEFAULT_ORDER
from ui import identity
from ui.context import StudioContext
from ui.policy import require, uploaded_path
from ui.ranking.desk import RankingDesk
from ui.ranking.projects import create_project, export_project, parse_settings

LABELING_CONCURRENCY = 32  # next_pair / vote / skip / undo at once (each a few ms)
HEAVY_CONCURRENCY = 2  # project creation and exports at once


def _uploaded_paths(files: list | None) -> list[str]:
    """Paths of files a client uploaded: only Gradio's upload folder is accepted."""
    if files is not None and not isinstance(files, list):
        raise StudioError("files must be a list of uploaded files")
    return [uploaded_path(f) for f in files or []]


@contextlib.contextmanager
def user_errors():
    """Show a StudioError's message to the caller (gr.Error) instead of 'Error'."""
    try:
        yield
    except gr.Error:
        raise
    except StudioError as exc:
        raise gr.Error(str(exc)) from exc


def register_api(ctx: StudioContext, desk: RankingDesk) -> None:
    """Declare the endpoints inside the current Blocks."""

    def list_projects() -> list:
        """Every project: name, instruction, settings, image and vote counts."""
        with user_errors():
            require(ctx, "list_projects")
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
            require(ctx, "create_project", admin_token, profile)
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

    def delete_project(
        project: str,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> str:
        """Delete a project and its votes (owner only); image files are not touched.
        Lets a script start over under the same name."""
        with user_errors():
            require(ctx, "delete_project", admin_token, profile)
            if not isinstance(project, str) or not project:
                raise StudioError("give the name of the project to delete")
            ctx.studio.delete_project(project)
            desk.forget(project)
            return f"deleted {project!r}"

    def join(
        project: str,
        name: str,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """Claim a labeler name in a project; returns {project, labeler, key}. Pass the key
        to next_pair, vote, skip and undo. A name someone holds is refused (the owner
        gets its key); logged in with Hugging Face, the name is hf:<user>."""
        with user_errors():
            require(ctx, "join", admin_token, profile)
            return identity.join(ctx, desk.session(project), name, admin_token, profile)

    def _labeler(event: str, project: str, key, admin_token: str, profile) -> str:
        require(ctx, event, admin_token, profile)
        return identity.api_labeler(ctx, desk.session(project), key, admin_token, profile)

    def next_pair(
        project: str,
        labeler: str,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """The labeler's open pair (the same one until answered), with display URLs.
        ``labeler``: the key from /join (the owner may give a plain name)."""
        with user_errors():
            who = _labeler("next_pair", project, labeler, admin_token, profile)
            return _with_progress(desk.view(project, who))

    def vote(
        project: str,
        labeler: str,
        pair_id: str,
        outcome: str,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """Answer pair ``pair_id`` with left, right or tie; returns the next pair.
        A second answer to the same pair is not counted (see ``message``)."""
        with user_errors():
            who = _labeler("vote", project, labeler, admin_token, profile)
            return _with_progress(desk.vote(project, who, pair_id, outcome))

    def skip(
        project: str,
        labeler: str,
        pair_id: str,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """Skip pair ``pair_id``; returns the next pair."""
        with user_errors():
            who = _labeler("skip", project, labeler, admin_token, profile)
            return _with_progress(desk.skip(project, who, pair_id))

    def undo(
        project: str,
        labeler: str,
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """Undo this labeler's latest vote (never anyone else's); returns its pair (same
        sides, a new pair id) to answer again, or the current pair when there was nothing
        to undo."""
        with user_errors():
            who = _labeler("undo", project, labeler, admin_token, profile)
            return _with_progress(desk.undo(project, who))

    def leaderboard(project: str, order: str = DEFAULT_ORDER) -> list:
        """Rows best first: rank, uid, name, mu, sigma, conservative, wins, losses, ties,
        comparisons, excluded, exclusion_reason. ``order``: auto (default), conservative,
        mu or refit."""
        with user_errors():
            require(ctx, "leaderboard")
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
            require(ctx, "export", admin_token, profile)
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

    # (function, name, concurrency group, limit): labeling calls are short and share one
    # generous pool; creating and exporting read and write many files, so few at a time.
    for fn, api_name, group, limit in (
        (list_projects, "list_projects", "ranking-api", LABELING_CONCURRENCY),
        (create, "create_project", "ranking-heavy", HEAVY_CONCURRENCY),
        (delete_project, "delete_project", "ranking-heavy", HEAVY_CONCURRENCY),
        (join, "join", "ranking-api", LABELING_CONCURRENCY),
        (next_pair, "next_pair", "ranking-api", LABELING_CONCURRENCY),
        (vote, "vote", "ranking-api", LABELING_CONCURRENCY),
        (skip, "skip", "ranking-api", LABELING_CONCURRENCY),
        (undo, "undo", "ranking-api", LABELING_CONCURRENCY),
        (leaderboard, "leaderboard", "ranking-read", HEAVY_CONCURRENCY * 2),
        (export, "export", "ranking-heavy", HEAVY_CONCURRENCY),
    ):
        gr.api(fn, api_name=api_name, concurrency_limit=limit, concurrency_id=group)
