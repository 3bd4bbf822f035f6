"""The labeling desk: pairs, votes, skips and undo for the page and the API alike.

Thin over :class:`ranker.service.ProjectSession`, it adds what the browser needs:

* Look-ahead, as the engine keeps it (:meth:`ranker.session.ProjectSession.lookahead`,
  up to three open pairs per labeler in SQLite): the oldest is on screen and the page
  preloads the others' images, so a key press swaps to pictures already loaded. The
  vote call answers with the new current pair in the same round trip; the freed slot
  is refilled in the background, so the pair selector's work (and its occasional slow
  refits) stays off the labeler's path. A refresh or a restart shows the same pairs.
* Display copies: resized images from :mod:`ui.thumbnails`, never the originals.
* One answer per pair: a vote names its pair id; a second answer (double press,
  key repeat, two tabs) is refused by the engine and reported, not counted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from ranker.errors import DuplicateVoteError, StudioError, UnknownPairError
from ui.context import StudioContext
from ui.ranking.view import PairView, ShownImage
from ui.thumbnails import DisplayCache, DisplayError

SHOWN_NOW = 2  # current pair + one look-ahead must exist before answering
log = logging.getLogger(__name__)


class RankingDesk:
    """One per app; safe to share between request threads."""

    def __init__(self, ctx: StudioContext) -> None:
        self.ctx = ctx
        self.cache = DisplayCache(ctx.cache_dir)
        # (project, labeler) -> [lock, users]: an entry lives only while in use, so the
        # map is bounded by the requests in flight, not by every visitor ever seen
        self._locks: dict[tuple[str, str], list] = {}
        self._locks_guard = threading.Lock()
        self._shown: OrderedDict[str, float] = OrderedDict()  # pair id -> first shown
        self._warmed: set[str] = set()
        self._refills = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pair-refill")
        self._pending: set[tuple[str, str]] = set()

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

    def forget(self, project: str) -> None:
        """Drop what the desk remembers of a deleted project."""
        self._warmed.discard(project)

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
        """Undo this labeler's latest vote (kept in the log, marked undone); the engine
        hands its pair back, so the view shows it to answer again."""
        session = self.session(project)
        with self._lock(project, labeler):
            undone = session.undo(labeler)
            if undone is None:
                message = "Nothing to undo."
            else:
                left, right = session.image(undone.left_uid), session.image(undone.right_uid)
                message = f"Undid your vote on {left.name} vs {right.name}: answer it again."
            return self._view(session, labeler, message)

    def exclude(self, project: str, labeler: str, uid: str, reason: str | None) -> PairView:
        session = self.session(project)
        with self._lock(project, labeler):
            session.set_excluded(uid, True, reason or None)
            name = session.image(uid).name
            return self._view(session, labeler, f"Excluded {name}.")

    # --- internals --------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, project: str, labeler: str) -> Iterator[None]:
        """Hold the labeler's own lock (made on first use, dropped when nobody holds it)."""
        key = (project, labeler)
        with self._locks_guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]

    def _pairs(self, session, labeler: str) -> list:
        """The labeler's open matchups, oldest (current) first; at least SHOWN_NOW if any.

        The engine's look-ahead (:meth:`ranker.session.ProjectSession.lookahead`) holds
        them; slots still empty are filled in the background.
        """
        pairs, missing = session.lookahead(labeler, SHOWN_NOW)
        if missing:
            self._refill_later(session.name, labeler)
        return pairs

    def _refill_later(self, project: str, labeler: str) -> None:
        key = (project, labeler)
        with self._locks_guard:
            if key in self._pending:
                return
            self._pending.add(key)
        self._refills.submit(self._refill, project, labeler)

    def _refill(self, project: str, labeler: str) -> None:
        """Fill empty slots and make their display copies, off the request path."""
        try:
            session = self.session(project)
            with self._locks_guard:
                self._pending.discard((project, labeler))
            with self._lock(project, labeler):
                made, _ = session.lookahead(labeler)
            for m in made:
                for img in (m.left, m.right):
                    try:
                        self.cache.ensure(img.uid, img.path)
                    except DisplayError:
                        continue
        except Exception:  # a background helper: log, the next request retries
            log.exception("refilling look-ahead pairs of %s in %s failed", labeler, project)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for pending background refills (tests, shutdown)."""
        self._refills.submit(lambda: None).result(timeout)

    def _view(self, session, labeler: str, message: str) -> PairView:
        pairs = self._pairs(session, labeler)
        instruction = session.row.instruction
        if not pairs:
            return PairView(session.name, instruction, None, message=message, done=True)
        current = pairs[0]
        self._mark_shown(current.pair_id)
        prefetch = []
        for ahead in pairs[1:]:
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
