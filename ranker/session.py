"""The labeling flow of one project: hand out pairs, record votes and skips, undo.

Each labeler has one open pair (an assignment in the vote log) until it is
answered or skipped; a pair handed to one labeler is kept from the others for
``RESERVE_SECONDS``; open pairs left behind expire after ``OPEN_PAIR_MAX_AGE``. A
vote is durable in SQLite before the ratings move, and undo marks the vote and
rewinds the ratings exactly (:meth:`ProjectSession._rewind`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np

from common.contracts import OUTCOMES, RIGHT, TIE
from ranker.errors import DuplicateVoteError, StudioError, UnknownPairError
from ranker.project_state import ProjectState
from ranker.store import Assignment, ImageRow, NewVote, ProjectRow, Store, VoteRow

RESERVE_SECONDS = 120.0  # a pair handed to one labeler is kept from others this long
OPEN_PAIR_MAX_AGE = 24 * 3600.0
"""Seconds an unanswered pair stays open. Anonymous visitors leave theirs behind; older
ones are deleted (on load, then at most every ``OPEN_PAIR_SWEEP_EVERY`` seconds from
``next_pair``) and a labeler who comes back later gets a fresh pair."""
OPEN_PAIR_SWEEP_EVERY = 3600.0
LOOKAHEAD = 3
"""Open pairs one labeler may hold at once: the one on screen and two looked ahead, so
a client can preload the next images. Slot 0 is stored under the labeler's name,
slot k under ``slot_name(labeler, k)``; only this module spells that encoding."""
_SLOT_MARK = "#next"


def slot_name(labeler: str, slot: int) -> str:
    """The assignment key of a labeler's look-ahead ``slot`` (0 = the current pair)."""
    if not 0 <= slot < LOOKAHEAD:
        raise StudioError(f"look-ahead slot must be 0..{LOOKAHEAD - 1}, not {slot}")
    return labeler if slot == 0 else f"{labeler}{_SLOT_MARK}{'' if slot == 1 else slot}"


def slot_holder(key: str) -> str:
    """The labeler an assignment key belongs to (inverse of :func:`slot_name`)."""
    return key.split(_SLOT_MARK, 1)[0]


@dataclass(frozen=True)
class Matchup:
    """A pair handed to a labeler; answering names ``pair_id``."""

    pair_id: str
    left: ImageRow
    right: ImageRow
    instruction: str
    project: str


class ProjectSession(ProjectState):
    """One project's live state (:class:`ProjectState`) plus its labelers' pairs and votes."""

    def __init__(self, store: Store, row: ProjectRow) -> None:
        self.clock = time.time  # when pairs are issued and expire; tests may replace it
        self._rng = np.random.default_rng(row.id)
        self._reserved: dict[tuple[int, int], tuple[str, float]] = {}
        self._previous: dict[str, tuple[int, int]] = {}
        self._next_sweep = 0.0
        super().__init__(store, row)
        self._expire_open_pairs(self.clock())
        self._restore_reservations()

    # --- pairs ------------------------------------------------------------------------
    def next_pair(self, labeler: str) -> Matchup | None:
        """The pair this labeler should answer: the one already shown, else a new one."""
        labeler = _labeler(labeler)
        with self._lock:
            now = self.clock()
            self._expire_open_pairs(now)
            current = self.store.assignments(self.row.id).get(labeler)
            if current and self._still_valid(current, now):
                return self._matchup(current)
            self._reserved = {k: v for k, v in self._reserved.items() if v[1] > now}
            avoid = {k for k, (who, _) in self._reserved.items() if who != labeler}
            if labeler in self._previous:
                avoid.add(self._previous[labeler])
            pair = self.selector.next_pair(self.ratings.pool, self._rng, avoid)
            if pair is None:
                return None
            i, j = (pair[1], pair[0]) if self._rng.random() < 0.5 else pair
            assignment = Assignment(uuid.uuid4().hex, self.images[i].uid, self.images[j].uid, now)
            self.store.assign(self.row.id, labeler, assignment)
            self._reserved[_key(i, j)] = (labeler, now + RESERVE_SECONDS)
            return self._matchup(assignment)

    def _restore_reservations(self) -> None:
        """Rebuild the reservations from the open pairs in the database (after a restart),
        so the pairs other labelers still hold are not handed out again."""
        for key, a in self.store.assignments(self.row.id).items():
            i, j = self.index.get(a.left_uid), self.index.get(a.right_uid)
            if i is not None and j is not None:
                self._reserved[_key(i, j)] = (key, a.issued_at + RESERVE_SECONDS)

    def _still_valid(self, a: Assignment, now: float) -> bool:
        """Both images still in play, and not so old that a sweep may delete it."""
        if a.issued_at <= now - OPEN_PAIR_MAX_AGE:
            return False
        i, j = self.index.get(a.left_uid), self.index.get(a.right_uid)
        pool = self.ratings.pool
        return i is not None and j is not None and pool.active[i] and pool.active[j]

    def _expire_open_pairs(self, now: float) -> None:
        """The one place open pairs are cleaned up: on load, then at most once per sweep
        interval. A vote on a deleted pair gets UnknownPairError ("ask for the next pair")."""
        if now < self._next_sweep:
            return
        self.store.delete_open_pairs(self.row.id, now - OPEN_PAIR_MAX_AGE)
        self._next_sweep = now + OPEN_PAIR_SWEEP_EVERY

    def matchup(self, pair_id: str, left_uid: str, right_uid: str) -> Matchup:
        """The pair as a labeler sees it: both images, the instruction, the project."""
        return Matchup(
            pair_id, self.image(left_uid), self.image(right_uid), self.row.instruction, self.name
        )

    def _matchup(self, a: Assignment) -> Matchup:
        return self.matchup(a.pair_id, a.left_uid, a.right_uid)

    def _open_pair(self, pair_id: str, labeler: str) -> Assignment:
        """The open pair ``pair_id`` of ``labeler``, or why it cannot be answered (answered
        before, never shown / replaced / expired, or handed to someone else)."""
        if not isinstance(pair_id, str) or len(pair_id) > 64:
            raise UnknownPairError("a pair id is the short text next_pair returned")
        found = self.store.find_assignment(self.row.id, pair_id)
        if found is not None:
            if slot_holder(found[0]) != labeler:
                raise UnknownPairError(
                    f"pair {pair_id!r} was not handed to you; ask for your next pair"
                )
            return found[1]
        if self.store.has_pair(self.row.id, pair_id):
            raise DuplicateVoteError("this pair was already answered or skipped; it counts once")
        raise UnknownPairError(
            f"pair {pair_id!r} is not open in project {self.name!r}: it was never shown "
            "or was replaced by a newer pair; ask for the next pair"
        )

    def vote(
        self, pair_id: str, outcome: str, labeler: str, response_ms: float | None = None
    ) -> int:
        """Record the answer to a handed-out pair; returns the vote id once it is durable.

        A second answer to the same pair raises DuplicateVoteError (a double press).
        """
        if outcome not in OUTCOMES:
            raise StudioError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        labeler = _labeler(labeler)
        with self._lock:
            a = self._open_pair(pair_id, labeler)
            return self._record(
                [
                    (
                        pair_id,
                        a.left_uid,
                        a.right_uid,
                        outcome,
                        labeler,
                        time.time(),
                        response_ms,
                        "app",
                    )
                ]
            )[0]

    def record_votes(self, votes: list[NewVote]) -> list[int]:
        """Append already-made votes (imports, API users voting on named images)."""
        with self._lock:
            for v in votes:
                self.image(v[1]), self.image(v[2])
                if v[1] == v[2]:
                    raise StudioError(f"a vote compares image {v[1]!r} with itself")
            return self._record(votes)

    def _record(self, votes: list[NewVote]) -> list[int]:
        ids = self.store.add_votes(self.row.id, votes)  # durable before anything else
        for vote_id, (_, left, right, outcome, labeler, *_rest) in zip(ids, votes, strict=True):
            i, j = self.index[left], self.index[right]
            winner, loser = (j, i) if outcome == RIGHT else (i, j)
            self.ratings.apply(winner, loser, outcome == TIE)
            self._applied.append((vote_id, winner, loser, outcome == TIE))
            self._previous[labeler] = _key(i, j)
            self._reserved.pop(_key(i, j), None)
            self.selector.observe(self.ratings.pool, winner, loser, 0.5 if outcome == TIE else 1.0)
        return ids

    def skip(self, pair_id: str, labeler: str) -> None:
        labeler = _labeler(labeler)
        with self._lock:
            a = self._open_pair(pair_id, labeler)
            self.store.add_skip(self.row.id, pair_id, a.left_uid, a.right_uid, labeler)
            i, j = self.index[a.left_uid], self.index[a.right_uid]
            self._previous[labeler] = _key(i, j)
            self._reserved.pop(_key(i, j), None)

    def undo(self, labeler: str) -> VoteRow | None:
        """Undo this labeler's latest vote (marked, never deleted); None if nothing to undo.

        The undone pair comes back as the labeler's open pair, same sides as shown, so
        a misclick can be answered again (see :meth:`_reopen`).
        """
        labeler = _labeler(labeler)
        with self._lock:
            last = self.store.last_vote(self.row.id, labeler)
            if last is None:
                return None
            self.store.mark_undone(last.id)
            self._rewind(last.id)
            self._previous.pop(labeler, None)
            self._reopen(labeler, last)
            return last

    def _reopen(self, labeler: str, vote: VoteRow) -> None:
        """Hand the pair of an undone vote back to its labeler, under a new pair id (the
        old one stays with the undone vote).

        It replaces the labeler's open pair and is stamped just before the oldest pair the
        labeler holds (look-ahead slots included), so it is the one shown now; its
        images must still be in play.
        """
        i, j = self.index.get(vote.left_uid), self.index.get(vote.right_uid)
        pool = self.ratings.pool
        if i is None or j is None or not (pool.active[i] and pool.active[j]):
            return
        now = self.clock()
        open_pairs = self.store.assignments(self.row.id)
        held = [a.issued_at for key, a in open_pairs.items() if slot_holder(key) == labeler]
        replaced = open_pairs.get(labeler)
        if replaced is not None:
            self._release(replaced)
        a = Assignment(uuid.uuid4().hex, vote.left_uid, vote.right_uid, min([now, *held]) - 1e-3)
        self.store.assign(self.row.id, labeler, a)
        self._reserved[_key(i, j)] = (labeler, now + RESERVE_SECONDS)

    def _release(self, a: Assignment) -> None:
        """Let other labelers have the pair of a dropped open pair again."""
        i, j = self.index.get(a.left_uid), self.index.get(a.right_uid)
        if i is not None and j is not None:
            self._reserved.pop(_key(i, j), None)

    def _rewind(self, vote_id: int) -> None:
        """Drop one applied vote: rewind past it exactly, then re-apply the later ones.

        The result equals a full replay of the remaining votes, at the cost of the
        votes made since (usually none).
        """
        ids = [entry[0] for entry in self._applied]
        at = len(ids) - 1 - ids[::-1].index(vote_id)
        later = self._applied[at + 1 :]
        for _ in range(len(self._applied) - at):
            self.ratings.undo_last()
        del self._applied[at:]
        for entry in later:
            self.ratings.apply(*entry[1:])
            self._applied.append(entry)
        self.selector.reset()


def _key(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)


def _labeler(labeler: str | None) -> str:
    if labeler is not None and not isinstance(labeler, str):
        raise StudioError(f"the labeler must be text, not {type(labeler).__name__}")
    labeler = (labeler or "").strip()
    if not labeler:
        raise StudioError("every vote needs a labeler name or session id")
    if len(labeler) > 200:
        raise StudioError("labeler names are limited to 200 characters")
    return labeler
