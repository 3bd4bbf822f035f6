"""Who may vote under a name: labeler keys and name claims, per project.

A labeler name belongs to whoever claimed it first in a project. API clients claim
a name with :meth:`Labelers.issue`, which returns a *labeler key*: an HMAC-signed
token naming the project, the name and a random claim id. ``next_pair``, ``vote``,
``skip`` and ``undo`` take the key, never a free name, so a caller can only act as
the name it holds. A browser claims the name typed in its name box under a holder
derived from its own secret; the same name cannot then be used from another
browser or key. Names that already have votes from before claims existed, and the
system names of imports, can only be claimed by the owner (``override=True``).

The signing secret lives beside the database (``.labeler_secret``, mode 0600), so
keys survive restarts and a copied database without it issues no valid keys.

Example:
    >>> labelers = Labelers(store)                                # doctest: +SKIP
    >>> key = labelers.issue(project.row.id, "alice")             # doctest: +SKIP
    >>> labelers.verify(project.row.id, key)                      # doctest: +SKIP
    'alice'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

from ranker.errors import StudioError

KEY_PREFIX = "lk1."
OAUTH_PREFIX = "hf:"  # names from Hugging Face OAuth; never claimable by key or typed name
ANON_PREFIX = "anon-"  # browser ids derived from the browser's own secret
SYSTEM_NAMES = frozenset({"import", "image-ranker"})  # votes that arrived by import
NAME_OK = re.compile(r"^[\w .@+\-]{1,64}$")
CACHE_SIZE = 10_000  # verified (project, name, holder) triples kept in memory

CLAIMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS labeler_claims (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (project_id, name)
);
"""


class IdentityError(StudioError):
    """A labeler name or key the server cannot accept; the message says why."""


def check_name(name: object) -> str:
    """A typed or joined labeler name, validated; raises IdentityError naming the fault."""
    if not isinstance(name, str):
        raise IdentityError(f"the labeler name must be text, not {type(name).__name__}")
    name = name.strip()
    if not name:
        raise IdentityError("give a labeler name (who is voting)")
    if not NAME_OK.match(name):
        raise IdentityError(
            "names may use letters, digits, spaces and . @ + - _ (at most 64 characters)"
        )
    if name.startswith(ANON_PREFIX):
        raise IdentityError(f"names starting with {ANON_PREFIX!r} are kept for anonymous labelers")
    if name.lower() in SYSTEM_NAMES:
        raise IdentityError(f"{name!r} is the name of imported votes; choose another")
    return name


class Labelers:
    """Name claims in the vote database, and the keys that prove them."""

    def __init__(self, store, secret_file: Path | None = None) -> None:
        self.store = store
        path = secret_file or Path(store.path).parent / ".labeler_secret"
        self._secret = _load_secret(path)
        self._verified: OrderedDict[tuple[int, str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        store.ensure_schema(CLAIMS_SCHEMA)

    # --- claims -------------------------------------------------------------------------
    def holder_of(self, project_id: int, name: str) -> str | None:
        rows = self.store._query(
            "SELECT holder FROM labeler_claims WHERE project_id = ? AND name = ?",
            (project_id, name),
        )
        return rows[0][0] if rows else None

    def claim(self, project_id: int, name: str, holder: str, *, override: bool = False) -> None:
        """Make ``name`` belong to ``holder`` in the project; raise if someone else has it.

        ``override`` (the owner) takes a name from its holder or one with old votes.
        """
        if self._known(project_id, name, holder):
            return
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT holder FROM labeler_claims WHERE project_id = ? AND name = ?",
                (project_id, name),
            ).fetchone()
            if row is not None and row[0] != holder and not override:
                raise IdentityError(
                    f"the name {name!r} is already taken in this project; choose another"
                )
            if row is None and not override:
                voted = db.execute(
                    "SELECT 1 FROM votes WHERE project_id = ? AND labeler = ? LIMIT 1",
                    (project_id, name),
                ).fetchone()
                if voted is not None:
                    raise IdentityError(
                        f"the name {name!r} has votes from before names were claimed; "
                        "choose another, or ask the owner for its key"
                    )
            if row is None or row[0] != holder:
                db.execute(
                    "INSERT OR REPLACE INTO labeler_claims VALUES (?,?,?,?)",
                    (project_id, name, holder, time.time()),
                )
        self._remember(project_id, name, holder)

    # --- keys ---------------------------------------------------------------------------
    def issue(
        self, project_id: int, name: object, *, override: bool = False, trusted: bool = False
    ) -> str:
        """A new key for ``name``; the name must be free (or ``override``, the owner).

        The owner asking for a name someone holds gets that holder's key, so both can
        act on it (the owner acting for a labeler, explicitly). ``trusted`` names
        (OAuth's ``hf:<user>``) skip the rules for typed names.
        """
        name = name if trusted and isinstance(name, str) else check_name(name)
        current = self.holder_of(project_id, name)
        if current is not None and current.startswith("key:") and override:
            nonce = current[4:]
        else:
            nonce = secrets.token_urlsafe(12)
            self.claim(project_id, name, "key:" + nonce, override=override)
        body = _b64(json.dumps([project_id, name, nonce], separators=(",", ":")).encode())
        return f"{KEY_PREFIX}{body}.{self._sign(body)}"

    def verify(self, project_id: int, key: object) -> str:
        """The name a key was issued for in this project; IdentityError if it is not valid."""
        if not isinstance(key, str) or not key.startswith(KEY_PREFIX) or len(key) > 400:
            raise IdentityError(
                "give the labeler key from /join (labeler names alone are not accepted)"
            )
        body, _, sig = key[len(KEY_PREFIX) :].partition(".")
        if not hmac.compare_digest(sig.encode(), self._sign(body).encode()):
            raise IdentityError("this labeler key is not valid on this server")
        pid, name, nonce = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if pid != project_id:
            raise IdentityError("this labeler key belongs to another project; /join this one")
        holder = "key:" + nonce
        if not self._known(project_id, name, holder):
            if self.holder_of(project_id, name) != holder:
                raise IdentityError("this labeler key was replaced; /join again")
            self._remember(project_id, name, holder)
        return name

    def browser_holder(self, browser_token: str) -> str:
        """The claim holder for a browser: derived from its secret, never the secret."""
        return "browser:" + self._sign("browser:" + browser_token)[:24]

    def anonymous_id(self, browser_token: str) -> str:
        """The public anonymous labeler id of a browser (its secret stays private)."""
        return ANON_PREFIX + self._sign("anon:" + browser_token)[:10]

    # --- internals ----------------------------------------------------------------------
    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def _known(self, project_id: int, name: str, holder: str) -> bool:
        with self._lock:
            key = (project_id, name, holder)
            if key in self._verified:
                self._verified.move_to_end(key)
                return True
            return False

    def _remember(self, project_id: int, name: str, holder: str) -> None:
        with self._lock:
            stale = [k for k in self._verified if k[:2] == (project_id, name) and k[2] != holder]
            for k in stale:
                del self._verified[k]
            self._verified[(project_id, name, holder)] = None
            while len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _load_secret(path: Path) -> bytes:
    """The signing secret, made once: created exclusively, so two threads or processes
    starting together agree on one secret (a second one would void the first's keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    for _ in range(100):  # the creator may still be writing
        text = path.read_text().strip()
        if text:
            return text.encode()
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty; delete it to make a new labeler-key secret")
