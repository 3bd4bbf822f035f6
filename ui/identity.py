"""Who is labeling, and who owns the Space.

A labeler is, in order of preference: the Hugging Face username when the Space has
OAuth and the visitor logged in; else the name they typed once (kept in the
browser's localStorage); else an anonymous id made once per browser. Every vote
records it, so per-labeler state lives server-side, keyed by project and labeler.

The owner (settings, deletion, exports, new projects on a Space) is whoever gives
the configured admin token, or on a Space the logged-in Space author. Running
locally with no token configured, the local user is the owner.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

from ui.context import StudioContext

ANON_PREFIX = "anon-"
# '#' is reserved: the tab keeps a second, look-ahead pair under "<labeler>#next".
_NAME_OK = re.compile(r"^[\w .@+\-]{1,64}$")
BROWSER_STORAGE_KEY = "preference-studio-labeler"


class IdentityError(ValueError):
    """A typed labeler name the app cannot use; the message says why."""


def new_anonymous_id() -> str:
    return ANON_PREFIX + secrets.token_hex(4)


def clean_name(name: str | None) -> str:
    """Validate a typed labeler name; empty means 'no name'."""
    name = (name or "").strip()
    if not name:
        return ""
    if not _NAME_OK.match(name):
        raise IdentityError(
            "names may use letters, digits, spaces and . @ + - _ (at most 64 characters)"
        )
    if name.startswith(ANON_PREFIX):
        raise IdentityError(f"names starting with {ANON_PREFIX!r} are kept for anonymous labelers")
    return name


def resolve_labeler(
    hf_username: str | None, typed_name: str | None, anonymous_id: str | None
) -> str:
    """The labeler id votes are recorded under (see the module docstring for the order)."""
    if hf_username:
        return f"hf:{hf_username}"
    try:
        name = clean_name(typed_name)
    except IdentityError:
        name = ""
    if name:
        return name
    if anonymous_id and anonymous_id.startswith(ANON_PREFIX) and anonymous_id[5:].isalnum():
        return anonymous_id
    return new_anonymous_id()


def is_owner(ctx: StudioContext, token: str | None = None, hf_username: str | None = None) -> bool:
    """True for the admin token, the logged-in Space author, or the local user when unset."""
    if ctx.admin_token and token and hmac.compare_digest(token.strip(), ctx.admin_token):
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


def browser_secret(ctx: StudioContext) -> str:
    """A stable secret for gr.BrowserState, so a stored name survives a server restart."""
    path = Path(ctx.data_dir) / ".browser_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()
