"""The path gate: every path a request names is checked here, and only here.

A path is resolved with symlinks followed, then accepted only if it lies inside one
of the allowed roots. Resolving first is what stops ``../`` tricks and a symlink
inside an allowed folder that points elsewhere: the check runs on where the bytes
really are, not on what the name says.

Refusals differ by audience. A visitor learns nothing about the server's disk: a
missing path and a forbidden one get the same message. The owner is told which
folders are allowed, so a typo is quick to fix.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()).resolve()
    >>> gate(root, [root]) == root
    True
    >>> gate("/etc/passwd", [root], owner=False)
    Traceback (most recent call last):
    ...
    common.paths.PathRefused: that path is not available on this server
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HIDDEN = "that path is not available on this server"


class PathRefused(ValueError):
    """A path outside the allowed roots (or missing); the message suits the caller."""


def inside(path: str | os.PathLike, roots: Sequence[str | os.PathLike]) -> Path | None:
    """The resolved ``path`` if it lies in one of ``roots`` (both resolved), else None.

    Pure apart from reading symlinks; never raises for odd input (NUL bytes, loops).
    """
    try:
        real = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    for root in roots:
        try:
            base = Path(root).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if real == base or real.is_relative_to(base):
            return real
    return None


def gate(
    path: str | os.PathLike,
    roots: Sequence[str | os.PathLike],
    *,
    owner: bool = True,
    kind: str = "any",
    base: str | os.PathLike | None = None,
) -> Path:
    """Resolve ``path`` and return it if it is inside ``roots``; else raise PathRefused.

    kind: ``"dir"``, ``"file"`` or ``"any"`` (must exist as that);
    base: where a relative path starts (default: the first root);
    owner: whether the refusal may name the roots and say "does not exist".
    """
    text = os.fspath(path).strip() if isinstance(path, str | os.PathLike) else ""
    if not text or "\x00" in text:
        raise PathRefused("give a path" if not text else "a path cannot contain NUL bytes")
    if not roots:
        raise PathRefused(
            "local paths are off on this server (the operator can allow folders with BASE_DIR)"
            if owner
            else HIDDEN
        )
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = Path(base if base is not None else roots[0]) / p
    real = inside(p, roots)
    if real is None:
        names = ", ".join(str(Path(r)) for r in roots)
        raise PathRefused(
            f"{text} is outside the folders this server may read ({names})" if owner else HIDDEN
        )
    exists = {"dir": real.is_dir, "file": real.is_file, "any": real.exists}[kind]()
    if not exists:
        fault = {"dir": "is not a folder", "file": "is not a file", "any": "does not exist"}[kind]
        raise PathRefused(f"{text} {fault}" if owner else HIDDEN)
    return real


def slug(text: str, fallback: str = "project") -> str:
    """``text`` as a safe file-name part: runs of other characters become ``-``, at most
    60 characters, never empty, never a hidden or parent name.

    >>> slug("My project: v2/../x")
    'My-project-v2-..-x'
    >>> slug("..")
    'project'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or fallback


ResolvePath = Callable[[str, Path], str]


def relative_to_file(cell: str, base: Path) -> str:
    """The default path rule: absolute paths as written, relative ones from ``base``."""
    path = Path(cell)
    return str(path if path.is_absolute() else base / path)


@dataclass(frozen=True)
class InsideRoots:
    """A :data:`ResolvePath` that gates: a cell's path (relative ones from ``base``) is
    accepted only if the file it names lies inside ``roots``, else :class:`PathRefused`.

    A class rather than a closure so it pickles into data-loading worker processes.
    """

    roots: tuple[str, ...]

    def __call__(self, cell: str, base: Path) -> str:
        return str(gate(relative_to_file(cell, base), self.roots, kind="file"))
