"""Who is labeling: bound to the caller, never a free string.

In the browser a labeler is, in order: the Hugging Face username when the Space
has OAuth and the visitor logged in (``hf:<name>``); else the name typed once in
the name box, claimed in each project for this browser; else an anonymous id
derived from a secret the browser keeps (``gr.BrowserState``). The browser's
secret never leaves the server in any other form, so knowing someone's public
anonymous id does not let anyone vote as them.

Through the API a labeler is the name of a labeler key from ``/join``
(:mod:`ranker.labelers`), or the OAuth name. The owner may name any labeler
explicitly (a plain name instead of a key); locally on loopback with no admin
token the local user is the owner, so scripts need no key there.

Ownership itself is decided by :mod:`ui.policy`.
"""

from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path

from ranker.labelers import (
    ANON_PREFIX,
    KEY_PREFIX,
    OAUTH_PREFIX,
    IdentityError,
    Labelers,
    check_name,
)
from ui.context import StudioContext
from ui.policy import is_owner, owner_error

__all__ = [
    "ANON_PREFIX",
    "BROWSER_STORAGE_KEY",
    "IdentityError",
    "api_labeler",
    "browser_claim",
    "browser_secret",
    "clean_name",
    "is_owner",
    "labelers",
    "new_browser_token",
    "owner_error",
    "resolve_labeler",
]

BROWSER_STORAGE_KEY = "preference-studio-labeler"
MAX_OWNER_NAME = 120
_TOKEN_OK = re.compile(r"^[0-9a-f]{32}$")


_LABELERS_LOCK = threading.Lock()


def labelers(ctx: StudioContext) -> Labelers:
    """The app's name claims and labeler keys (one per app, beside the database)."""
    studio = ctx.studio
    with _LABELERS_LOCK:  # first requests arrive together: make exactly one
        if not hasattr(studio, "labelers"):
            studio.labelers = Labelers(studio.store)
        return studio.labelers


def new_browser_token() -> str:
    return secrets.token_hex(16)


def clean_name(name: str | None) -> str:
    """Validate a typed labeler name; empty means 'no name'."""
    if name is None or (isinstance(name, str) and not name.strip()):
        return ""
    return check_name(name)


def resolve_labeler(
    ctx: StudioContext, hf_username: str | None, typed_name: str | None, browser_token: str
) -> str:
    """The labeler id a browser votes under (see the module docstring for the order)."""
    if hf_username:
        return OAUTH_PREFIX + hf_username
    try:
        name = clean_name(typed_name)
    except IdentityError:
        name = ""
    return name or labelers(ctx).anonymous_id(browser_token)


def valid_browser_token(token: object) -> str | None:
    return token if isinstance(token, str) and _TOKEN_OK.match(token) else None


def browser_claim(ctx: StudioContext, session, labeler: str, browser_token: str) -> None:
    """Make sure a typed name is this browser's in the project (claimed on first use).

    OAuth names and anonymous ids need no claim: the server derived them itself.
    """
    if labeler.startswith((OAUTH_PREFIX, ANON_PREFIX)):
        return
    reg = labelers(ctx)
    reg.claim(session.row.id, labeler, reg.browser_holder(browser_token), override=is_owner(ctx))


def api_labeler(ctx: StudioContext, session, key: object, token: str | None, profile) -> str:
    """The labeler an API call acts as: the OAuth name, the key's name, or (owner only)
    a plain name given explicitly."""
    from ui.policy import username

    name = username(profile)
    if name:
        return OAUTH_PREFIX + name
    if isinstance(key, str) and key.startswith(KEY_PREFIX):
        return labelers(ctx).verify(session.row.id, key)
    if is_owner(ctx, token, None):
        if not isinstance(key, str) or not key.strip():
            raise IdentityError("give a labeler key (from /join) or, as the owner, a name")
        key = key.strip()
        if "#" in key or len(key) > MAX_OWNER_NAME or not key.isprintable():
            raise IdentityError(
                f"labeler names have no '#' and at most {MAX_OWNER_NAME} printable characters"
            )
        return key
    raise IdentityError(
        "give the labeler key from /join (labeler names alone are not accepted)"
        if isinstance(key, str)
        else f"the labeler key must be text, not {type(key).__name__}"
    )


def join(ctx: StudioContext, session, name: object, token: str | None, profile) -> dict:
    """Claim ``name`` in the project and return its key (the OAuth name when logged in)."""
    from ui.policy import username

    reg = labelers(ctx)
    hf = username(profile)
    if hf:  # OAuth proves the name: its key is this user's, whoever asked before
        key = reg.issue(session.row.id, OAUTH_PREFIX + hf, override=True, trusted=True)
    else:
        key = reg.issue(session.row.id, name, override=is_owner(ctx, token, None))
    return {"project": session.name, "labeler": reg.verify(session.row.id, key), "key": key}


def browser_secret(ctx: StudioContext) -> str:
    """A stable secret for gr.BrowserState, so a stored name survives a server restart."""
    path = Path(ctx.data_dir) / ".browser_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()
