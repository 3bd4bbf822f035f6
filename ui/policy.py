"""Who may call what: the one table of roles, and the one check that enforces it.

Three roles, as labeling tools on Spaces use them (Argilla's owner / annotator):

* **owner**: whoever gives the admin token (``STUDIO_ADMIN_TOKEN``, or the one
  printed at launch in network mode), or on a Space the logged-in Space author.
  Running on loopback with no token, the local user is the owner.
* **labeler**: anyone with an identity in a project: a labeler key from ``/join``
  (API), the OAuth name, or the browser's own id. Acts only as that labeler.
* **anyone**: read-only views and actions on the caller's own uploads.

Every named endpoint and every page event is listed in :data:`ROLES`; the app
refuses to start with an event that is not (:func:`audit`), and each handler asks
:func:`require` before it acts. Page events are named ``<module>.<function>``.
"""

from __future__ import annotations

import enum
import hmac
import os
from dataclasses import dataclass

import gradio as gr

from ranker.errors import StudioError
from ui.context import StudioContext


class Role(enum.Enum):
    ANYONE = "anyone"
    LABELER = "labeler"
    OWNER = "owner"


ANYONE, LABELER, OWNER = Role.ANYONE, Role.LABELER, Role.OWNER

ROLES: dict[str, Role] = {
    # --- named endpoints (gradio_client / HTTP) -----------------------------------------
    "list_projects": ANYONE,
    "create_project": OWNER,
    "delete_project": OWNER,
    "join": ANYONE,  # claims a free name; the owner may take any name
    "next_pair": LABELER,
    "vote": LABELER,
    "skip": LABELER,
    "undo": LABELER,  # the caller's own votes only
    "leaderboard": ANYONE,
    "export": OWNER,
    "dataset_preview": ANYONE,  # labeler names pseudonymised unless the owner asks
    "dataset_export": OWNER,
    "dataset_push": OWNER,
    "dataset_import": OWNER,
    "backup_now": OWNER,
    "backup_status": ANYONE,
    "score": ANYONE,  # own uploads, allowed models only; local folders need the owner
    "bucket": ANYONE,
    "compare": ANYONE,
    "prerank": OWNER,  # rewrites a project's starting ratings
    "refresh_models": ANYONE,
    "bucket_scores": ANYONE,
    "scoring_models": ANYONE,
    "training_start": OWNER,
    "training_poll": ANYONE,
    "attach_model": OWNER,  # computes every image's embedding; changes the project's ranking
    "detach_model": OWNER,
    "export_head": OWNER,  # writes a model folder from the project's online head
    "model_status": ANYONE,
    "training_stop": OWNER,
    # --- page events (private: the page calls them, scripts should not) -------------------
    "policy.prefill_token": ANYONE,  # copies ?token= from the login URL into the box
    "ranking.tab.on_load": ANYONE,
    "ranking.tab.on_name": ANYONE,
    "ranking.tab.after_name": LABELER,
    "ranking.tab.on_project": LABELER,
    "ranking.tab.answer": LABELER,
    "ranking.panels.load": ANYONE,
    "ranking.panels.on_create": OWNER,
    "ranking.owner.on_settings": OWNER,
    "ranking.owner.on_save": OWNER,
    "ranking.owner.exclude": OWNER,
    "ranking.owner.on_stats": OWNER,
    "ranking.owner.on_export": OWNER,
    "ranking.owner.on_delete": OWNER,
    "ranking.model_panel.on_status": ANYONE,
    "ranking.model_panel.on_attach": OWNER,
    "ranking.model_panel.on_detach": OWNER,
    "ranking.model_panel.on_export": OWNER,
    "dataset.tab.on_refresh": ANYONE,
    "dataset.tab.on_backup_status": ANYONE,
    "training.tab.on_preset": ANYONE,
    "training.tab.on_refresh_projects": ANYONE,
    "training.tab.on_refresh_models": ANYONE,
    "training.tab.on_start": OWNER,
    "training.tab.on_stop": OWNER,
    "training.tab.refresh": ANYONE,
    "training.tab.restore_form": ANYONE,  # page load; fills the form for the owner only
}


class Denied(gr.Error, StudioError):
    """A caller without the role an action needs; shown to the caller as it is."""

    def __init__(self, message: str) -> None:
        gr.Error.__init__(self, message)


class UndeclaredEvent(RuntimeError):
    """An event with no role in :data:`ROLES`: a programming error, caught at startup."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: whether they are the owner, and their OAuth name if any."""

    owner: bool
    username: str | None = None


def uploaded_path(f) -> str:
    """The path of a file the caller uploaded with the request; anything else (a path
    typed by a hostile client, a file elsewhere on the server) is refused."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    path = f.get("path") if isinstance(f, dict) else str(f)
    if not path or not is_in_or_equal(path, get_upload_folder()):
        raise Denied("files must be uploaded with the request (gradio_client handle_file)")
    return path


def username(profile) -> str | None:
    """The OAuth username of a ``gr.OAuthProfile`` (None when not logged in)."""
    name = getattr(profile, "username", None) if profile is not None else None
    return name if isinstance(name, str) and name else None


def is_owner(ctx: StudioContext, token: str | None = None, hf_username: str | None = None) -> bool:
    """True for the admin token, the logged-in Space author, or the local user when unset."""
    given = token.strip().encode() if isinstance(token, str) else b""
    if ctx.admin_token and given and hmac.compare_digest(given, ctx.admin_token.encode()):
        return True
    author = os.environ.get("SPACE_AUTHOR_NAME")
    if ctx.on_space and author and hf_username and hf_username == author:
        return True
    return not ctx.on_space and not ctx.admin_token


def owner_error(ctx: StudioContext) -> str:
    """What to tell a visitor who tried an owner-only action."""
    if ctx.admin_token:
        return "this needs the owner: type the admin token (STUDIO_ADMIN_TOKEN) in Owner tools"
    if ctx.on_space:
        return "this needs the Space owner: log in with Hugging Face as the Space's author"
    return "this needs the owner"


def require(ctx: StudioContext, event: str, token: str | None = None, profile=None) -> Caller:
    """Check the caller against the role of ``event``; raise :class:`Denied` if not allowed.

    Returns the caller, so a handler can widen what it shows the owner.
    """
    role = ROLES.get(event)
    if role is None:
        raise UndeclaredEvent(f"no role is declared for {event!r} in ui.policy.ROLES")
    name = username(profile)
    caller = Caller(is_owner(ctx, token, name), name)
    if role is OWNER and not caller.owner:
        raise Denied(owner_error(ctx))
    return caller


def event_key(block_fn) -> str:
    """The name an event has in :data:`ROLES`: its API name, or ``module.function`` with
    the module's path below ``ui`` (``ranking.tab.on_load``)."""
    if block_fn.api_visibility != "private" and block_fn.api_name:
        return str(block_fn.api_name)
    fn = getattr(block_fn.fn, "__wrapped__", block_fn.fn)
    module = getattr(fn, "__module__", "") or ""
    return f"{module.removeprefix('ui.')}.{getattr(fn, '__name__', '?')}"


def audit(demo: gr.Blocks) -> list[str]:
    """Events of ``demo`` (with a server function) that have no declared role."""
    missing = []
    for block_fn in demo.fns.values():
        if block_fn.fn is None:
            continue
        key = event_key(block_fn)
        if key not in ROLES:
            missing.append(key)
    return sorted(set(missing))


def prefill_token(box: gr.Textbox) -> None:
    """Fill an admin-token box from ``?token=`` (the login URL printed in network mode)."""
    from gradio.context import Context

    def prefill_token(request: gr.Request):
        token = request.query_params.get("token") if request is not None else None
        return token if isinstance(token, str) and len(token) <= 200 else gr.update()

    Context.root_block.load(prefill_token, None, box, api_visibility="private")
