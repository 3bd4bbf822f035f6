"""Errors the ranker raises for bad input; each message says what was wrong and what to do."""

from __future__ import annotations


class StudioError(ValueError):
    """Base class: a user-facing problem (bad input, unknown id), never a bug."""


class UnknownProjectError(StudioError, KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no project named {name!r}; list projects to see the names")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnknownImageError(StudioError, KeyError):
    def __init__(self, uid: str, project: str) -> None:
        super().__init__(f"no image {uid!r} in project {project!r}")

    def __str__(self) -> str:
        return self.args[0]


class UnknownPairError(StudioError):
    """The pair id was never handed out in this project (or belongs to another one)."""


class DuplicateVoteError(StudioError):
    """The pair was already answered: a double click or key repeat, counted once."""


class ImportFormatError(StudioError):
    """A CSV/JSON file that does not have the expected layout."""
