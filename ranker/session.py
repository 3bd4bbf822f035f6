"""The labeling flow of one project: hand out pairs, record votes and skips, undo.

Each labeler holds up to ``LOOKAHEAD`` open pairs (assignments in the vote log, one
per look-ahead slot) until they are answered or skipped: the oldest is the one to
answer now, the others let a client preload their images (:meth:`ProjectSession.lookahead`); a pair handed to one labeler is kept from the others for
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
from ranker.lookahead import OpenPair, OpenPairs
from ranker.project_state import ProjectState
from ranker.store import Assignment, ImageRow, NewVote, ProjectRow, Store, VoteRow

RESERVE_SECONDS = 120.0  # a pair handed to one labeler is kept from others this long
OPEN_PAIR_MAX_AGE = 24 * 3600.0
"""Seconds an unanswered pair stays open. Anonymous visitors leave theirs behind; older
ones are deleted (on load, then at most every ``OPEN_PAIR_SWEEP_EVERY`` seconds from
``next_pair``) and a labeler who comes back later gets a fresh pair."""
OPEN_PAIR_SWEEP_EVERY = 3600.0
LOOKAHEAD = 3
"""Open pairs one labeler may hold at once (look-ahead slots 0..2, the ``slot`` column
of ``assignments``): the one to answer and two looked ahead, so a client can preload
the next images. The price: a pair is chosen up to two votes before it is shown
(negligible with several labelers, each already out of step)."""


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
        # pair -> (labeler, slot, until): kept from everyone else, and from other slots
        self._reserved: dict[tuple[int, int], tuple[str, int, float]] = {}
        self._open = OpenPairs()  # mirror of the open pairs: no query per vote
        self._previous: dict[str, tuple[int, int]] = {}
        self._next_sweep = 0.0
        super().__init__(store, row)
        self._expire_open_pairs(self.clock())
        self._restore_reservations()

    # --- pairs ------------------------------------------------------------------------
    def next_pair(self, labeler: str, slot: int = 0) -> Matchup | None:
        """The pair in this labeler's look-ahead ``slot`` (0 by default): the one already
        handed out there, else a new one (None when nothing is left to compare)."""
        labeler = _labeler(labeler)
        if not isinstance(slot, int) or not 0 <= slot < LOOKAHEAD:
            raise StudioError(f"look-ahead slot must be 0..{LOOKAHEAD - 1}, not {slot!r}")
        with self._lock:
            now = self.clock()
            self._expire_open_pairs(now)
            current = self.store.assignments(self.row.id, labeler).get((labeler, slot))
            if current and self._still_valid(current, now):
                return self._matchup(current)
            self._reserved = {k: v for k, v in self._reserved.items() if v[2] > now}
            avoid = {k for k, (who, s, _) in self._reserved.items() if (who, s) != (labeler, slot)}
            if labeler in self._previous:
                avoid.add(self._previous[labeler])
            pair = self.selector.next_pair(self.ratings.pool, self._rng, avoid)
            if pair is None:
                return None
            i, j = (pair[1], pair[0]) if self._rng.random() < 0.5 else pair
            assignment = Assignment(uuid.uuid4().hex, self.images[i].uid, self.images[j].uid, now)
            self.store.assign(self.row.id, labeler, assignment, slot)
            self._reserved[_key(i, j)] = (labeler, slot, now + RESERVE_SECONDS)
            self._open.put(self.name, labeler, OpenPair.of(assignment, slot))
            return self._matchup(assignment)

    def lookahead(self, labeler: str, fill: int = LOOKAHEAD) -> tuple[list[Matchup], int]:
        """The labeler's open pairs, oldest (the one to answer now) first, after filling
        empty slots until ``fill`` pairs are open; and how many slots are still empty.

        A client shows the first pair and preloads the others' images; filling only
        one ahead on the request path (``fill=2``) and the rest later keeps the pair
        selector's slower draws off the labeler's path. Votes, skips and undo keep
        the in-memory mirror exact, so this reads SQLite only on a labeler's first
        call.
        """
        labeler = _labeler(labeler)
        found, held = [], set()
        for p in self._open.get(self.name, labeler, lambda: self._load_open(labeler)):
            if self._still_valid(p, self.clock()):
                found.append(self.matchup(p.pair_id, p.left_uid, p.right_uid))
                held.add(p.slot)
        missing = [s for s in range(LOOKAHEAD) if s not in held]
        while len(found) < fill and missing:
            m = self.next_pair(labeler, missing[0])
            if m is None:
                break
            found.append(m)
            missing.pop(0)
        return found, len(missing)

    def _load_open(self, labeler: str) -> list[OpenPair]:
        issued = self.store.assignments(self.row.id, labeler)
        return [OpenPair.of(a, slot) for (_, slot), a in issued.items()]

    def _restore_reservations(self) -> None:
        """Rebuild the reservations from the open pairs in the database (after a restart),
        so the pairs other labelers still hold are not handed out again."""
        for (labeler, slot), a in self.store.assignments(self.row.id).items():
            i, j = self.index.get(a.left_uid), self.index.get(a.right_uid)
            if i is not None and j is not None:
                self._reserved[_key(i, j)] = (labeler, slot, a.issued_at + RESERVE_SECONDS)

    def _still_valid(self, a: Assignment | OpenPair, now: float) -> bool:
        """Both images still in play, and not so old that a sweep may delete it (the
        slot then gets a fresh pair)."""
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
            if found[0] != labeler:
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
            self._open.drop_pair(self.name, pair_id, labeler)  # answered, or not open at all
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
            self._open.drop_pair(self.name, pair_id, labeler)
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
            self._open.forget(self.name, labeler)
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
        open_pairs = self.store.assignments(self.row.id, labeler)
        held = [a.issued_at for a in open_pairs.values()]
        replaced = open_pairs.get((labeler, 0))
        if replaced is not None:
            self._release(replaced)
        a = Assignment(uuid.uuid4().hex, vote.left_uid, vote.right_uid, min([now, *held]) - 1e-3)
        self.store.assign(self.row.id, labeler, a, 0)
        self._reserved[_key(i, j)] = (labeler, 0, now + RESERVE_SECONDS)

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
