"""The labeling desk: pairs, votes, skips and undo for the page and the API alike.

Thin over :class:`ranker.service.ProjectSession`, it adds what the browser needs:

* Look-ahead. Each labeler holds two open pairs in the engine: the one on screen
  (assigned to ``<labeler>``) and the next one (``<labeler>#next``). The page
  preloads the next pair's images, so a key press swaps to already-loaded pictures;
  the vote call answers with the new current pair and a fresh look-ahead, in one
  round trip. Both live in SQLite, so a refresh or a restart shows the same pairs.
  Votes are always recorded under the real labeler name.
* Display copies: resized images from :mod:`ui.images`, never the originals.
* One answer per pair: a vote names its pair id; a second answer (double press,
  key repeat, two tabs) is refused by the engine and reported, not counted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ranker.errors import DuplicateVoteError, StudioError, UnknownPairError
from ranker.service import Matchup
from ui.context import StudioContext
from ui.images import DisplayCache, DisplayError
from ui.ranking_view import PairView, ShownImage

AHEAD = "#next"


class RankingDesk:
    """One per app; safe to share between request threads."""

    def __init__(self, ctx: StudioContext) -> None:
        self.ctx = ctx
        self.cache = DisplayCache(ctx.cache_dir)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._shown: OrderedDict[str, float] = OrderedDict()  # pair id -> first shown
        self._warmed: set[str] = set()

    # --- projects ---------------------------------------------------------------------
    def session(self, project: str):
        """The live project; its display copies start warming on first use."""
        if not project:
            raise StudioError("choose a project first")
        session = self.ctx.studio.project(project)
        if project not in self._warmed:
            self._warmed.add(project)
            self.cache.warm((img.uid, img.path) for img in session.images)
        return session

    def project_names(self) -> list[str]:
        return [p.name for p in self.ctx.studio.list_projects()]

    # --- labeling ---------------------------------------------------------------------
    def view(self, project: str, labeler: str, message: str = "") -> PairView:
        """The labeler's current pair and the look-ahead (made if missing)."""
        session = self.session(project)
        with self._lock(project, labeler):
            return self._view(session, labeler, message)

    def vote(self, project: str, labeler: str, pair_id: str, outcome: str) -> PairView:
        """Record one answer and return the next pair; a repeated answer is not counted."""
        session = self.session(project)
        with self._lock(project, labeler):
            shown = self._shown.get(pair_id)
            response_ms = (time.time() - shown) * 1000 if shown else None
            try:
                session.vote(pair_id, outcome, labeler, response_ms=response_ms)
                message = ""
            except DuplicateVoteError:
                message = "That pair was already answered; it counts once."
            except UnknownPairError:
                message = "That pair is no longer open; here is your current pair."
            return self._view(session, labeler, message)

    def skip(self, project: str, labeler: str, pair_id: str) -> PairView:
        session = self.session(project)
        with self._lock(project, labeler):
            try:
                session.skip(pair_id, labeler)
                message = "Skipped."
            except (DuplicateVoteError, UnknownPairError):
                message = "That pair was already answered or skipped."
            return self._view(session, labeler, message)

    def undo(self, project: str, labeler: str) -> PairView:
        """Undo this labeler's latest vote (kept in the log, marked undone)."""
        session = self.session(project)
        with self._lock(project, labeler):
            undone = session.undo(labeler)
            if undone is None:
                message = "Nothing to undo."
            else:
                left, right = session.image(undone.left_uid), session.image(undone.right_uid)
                message = f"Undid your vote on {left.name} vs {right.name}."
            return self._view(session, labeler, message)

    def exclude(self, project: str, labeler: str, uid: str, reason: str | None) -> PairView:
        session = self.session(project)
        with self._lock(project, labeler):
            session.set_excluded(uid, True, reason or None)
            name = session.image(uid).name
            return self._view(session, labeler, f"Excluded {name}.")

    # --- internals --------------------------------------------------------------------
    def _lock(self, project: str, labeler: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((project, labeler), threading.Lock())

    def _pairs(self, session, labeler: str):
        """(current, look-ahead) matchups; the older assignment is the current one.

        Open assignments are read once; the engine is asked only for missing slots
        (it then picks a pair and stores the assignment).
        """
        issued = session.store.assignments(session.row.id)
        found = []
        for slot in (labeler, labeler + AHEAD):
            a = issued.get(slot)
            if a is not None and self._open(session, a):
                found.append((a.issued_at, self._matchup(session, a)))
                continue
            m = session.next_pair(slot)
            if m is not None:
                found.append((float("inf"), m))  # just made: the newest
        found.sort(key=lambda t: t[0])
        pairs = [m for _, m in found] + [None, None]
        return pairs[0], pairs[1]

    @staticmethod
    def _open(session, a) -> bool:
        """An assignment still answerable: both images known and not excluded."""
        try:
            return not (session.image(a.left_uid).excluded or session.image(a.right_uid).excluded)
        except StudioError:
            return False

    @staticmethod
    def _matchup(session, a) -> Matchup:
        return Matchup(
            a.pair_id,
            session.image(a.left_uid),
            session.image(a.right_uid),
            session.row.instruction,
            session.name,
        )

    def _view(self, session, labeler: str, message: str) -> PairView:
        current, ahead = self._pairs(session, labeler)
        instruction = session.row.instruction
        if current is None:
            return PairView(session.name, instruction, None, message=message, done=True)
        self._mark_shown(current.pair_id)
        prefetch = []
        if ahead is not None:
            for img in (ahead.left, ahead.right):
                try:
                    prefetch.append(self.cache.url(img.uid, img.path))
                except DisplayError:
                    continue
        return PairView(
            project=session.name,
            instruction=instruction,
            pair_id=current.pair_id,
            left=self._shown_image(current.left),
            right=self._shown_image(current.right),
            prefetch=prefetch,
            message=message,
        )

    def _shown_image(self, img) -> ShownImage:
        try:
            url, error = self.cache.url(img.uid, img.path), None
        except DisplayError as exc:
            url, error = None, str(exc)
        return ShownImage(img.uid, img.name, url, error, img.context)

    def _mark_shown(self, pair_id: str) -> None:
        with self._locks_guard:
            if pair_id not in self._shown:
                self._shown[pair_id] = time.time()
                while len(self._shown) > 10_000:
                    self._shown.popitem(last=False)

    def thumbnails(self, session, uids) -> dict[str, str | None]:
        """Thumbnail URLs for leaderboard rows (None for unreadable originals)."""
        out: dict[str, str | None] = {}
        for uid in uids:
            img = session.image(uid)
            try:
                out[uid] = self.cache.url(uid, img.path, "thumb")
            except DisplayError:
                out[uid] = None
        return out
