"""The ranking service: projects, pairs, votes, undo and the leaderboard.

This is the one orchestrator the app, the CLI and the API call. It joins the
durable vote log (:mod:`ranker.store`), the ratings replay (:mod:`ranker.ratings`)
and the pair selectors (:mod:`ranker.selection`). Every write reaches the database
before the in-memory state changes, so what a caller was told is what is on disk.

Example:
    >>> studio = Studio("studio.db")                             # doctest: +SKIP
    >>> project = studio.create_project("demo", folder="images/")  # doctest: +SKIP
    >>> pair = project.next_pair("alice")                        # doctest: +SKIP
    >>> project.vote(pair.pair_id, "left", "alice")              # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ranker.contracts import OUTCOMES, RIGHT, TIE
from ranker.errors import (
    DuplicateVoteError,
    StudioError,
    UnknownImageError,
    UnknownPairError,
)
from ranker.intake import IntakeReport, extract_zip, folder_files, intake_files
from ranker.ratings import RatingConfig, Ratings
from ranker.store import Assignment, ImageRow, NewVote, ProjectRow, Store, VoteRow

RESERVE_SECONDS = 120.0  # a pair handed to one labeler is kept from others this long
OPEN_PAIR_MAX_AGE = 24 * 3600.0
"""Seconds an unanswered pair stays open. Anonymous visitors leave theirs behind; older
ones are deleted (on load, then at most every ``OPEN_PAIR_SWEEP_EVERY`` seconds from
``next_pair``) and a labeler who comes back later gets a fresh pair."""
OPEN_PAIR_SWEEP_EVERY = 3600.0
DEFAULT_SETTINGS = {
    "strategy": "active",
    "rating_preset": "image_ranker",
    "budget": None,  # total comparisons; None = no budget
    "random_share": 0.5,  # for the Rapidata-style "budget" strategy
    "exclusion_reasons": {},
}


@dataclass(frozen=True)
class Matchup:
    """A pair handed to a labeler; answering names ``pair_id``."""

    pair_id: str
    left: ImageRow
    right: ImageRow
    instruction: str
    project: str


@dataclass(frozen=True)
class Progress:
    votes: int
    budget: int | None
    images: int
    active_images: int
    votes_per_image: float
    confidence: float
    done: bool


class ProjectSession:
    """One project's live state, rebuilt from the vote log when first opened."""

    def __init__(self, store: Store, row: ProjectRow) -> None:
        self.store = store
        self.row = row
        self.clock = time.time  # when pairs are issued and expire; tests may replace it
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(row.id)
        self._reserved: dict[tuple[int, int], tuple[str, float]] = {}
        self._previous: dict[str, tuple[int, int]] = {}
        self._next_sweep = 0.0
        self._reload()
        self._expire_open_pairs(self.clock())

    # --- state ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.row.name

    @property
    def settings(self) -> dict:
        return {**DEFAULT_SETTINGS, **self.row.settings}

    def _reload(self) -> None:
        """Rebuild images, ratings and selector from the database (a full replay)."""
        self.row = self.store.get_project(self.row.name)
        self.images: list[ImageRow] = self.store.images(self.row.id)
        self.index = {img.uid: i for i, img in enumerate(self.images)}
        self.rating_config = RatingConfig.from_settings(self.settings)
        votes = self.store.votes(self.row.id)
        self.ratings = Ratings.replay(
            len(self.images), self._as_indices(votes), self.rating_config, self._start()
        )
        # (vote id, winner, loser, draw) of every applied vote, in order: lets undo rewind.
        self._applied = [(v.id, *t) for v, t in zip(votes, self._as_indices(votes), strict=True)]
        for i, img in enumerate(self.images):
            self.ratings.pool.active[i] = not img.excluded
        self.selector = self._make_selector()

    def _start(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-image starting ratings: the pre-ranking where one was set, else the prior."""
        if all(img.prior_mu is None for img in self.images):
            return None
        cfg = self.rating_config
        mu = np.array([cfg.mu if i.prior_mu is None else i.prior_mu for i in self.images])
        sigma = np.array(
            [cfg.sigma if i.prior_sigma is None else i.prior_sigma for i in self.images]
        )
        return mu, sigma

    def pre_rank(self, scores: dict[str, float], agreement: float = 0.75) -> int:
        """Seed the ratings from model scores (uid -> score) so votes go where the model is unsure.

        ``agreement`` is how often the model agrees with people on random pairs; it
        sets how far apart the seeded ratings are and how uncertain they stay. The
        seeds are saved with the images, so ratings stay a replay of the log from
        them. Returns how many images were seeded.
        """
        from ranker.tsmath import prior_from_scores

        unknown = [uid for uid in scores if uid not in self.index]
        if unknown:
            raise UnknownImageError(unknown[0], self.name)
        if not 0.5 < agreement < 1.0:
            raise StudioError("agreement must be between 0.5 and 1 (exclusive)")
        uids = list(scores)
        cfg = self.rating_config
        mu, sigma = prior_from_scores(
            np.array([scores[u] for u in uids], dtype=np.float64),
            agreement,
            prior_mu=cfg.mu,
            prior_sigma=cfg.sigma,
        )
        priors = {u: (float(m), float(s)) for u, m, s in zip(uids, mu, sigma, strict=True)}
        with self._lock:
            self.store.set_priors(self.row.id, priors)
            self._reload()
        return len(uids)

    def clear_pre_rank(self) -> None:
        """Back to the plain prior for every image (votes are kept)."""
        with self._lock:
            self.store.set_priors(self.row.id, {img.uid: None for img in self.images})
            self._reload()

    def _make_selector(self):
        from ranker.selection import make_selector

        settings = self.settings
        if settings["strategy"] == "budget":
            return make_selector(
                "budget", budget=settings.get("budget"), random_share=settings["random_share"]
            )
        return make_selector(settings["strategy"])

    def _as_indices(self, votes: Iterable[VoteRow]) -> list[tuple[int, int, bool]]:
        out = []
        for v in votes:
            winner, loser = v.winner_loser
            out.append((self.index[winner], self.index[loser], v.outcome == TIE))
        return out

    def image(self, uid: str) -> ImageRow:
        if uid not in self.index:
            raise UnknownImageError(uid, self.name)
        return self.images[self.index[uid]]

    # --- images -----------------------------------------------------------------------
    def add_files(self, paths: Iterable[Path | str]) -> IntakeReport:
        """Validate and add files; known images (same bytes) keep their history."""
        with self._lock:
            known = {img.uid: img.path for img in self.images}
            report = intake_files(paths, known)
            rows, position = [], len(self.images)
            for info in report.accepted:
                existing = self.index.get(info.uid)
                rows.append(ImageRow.from_info(info, position if existing is None else existing))
                position += existing is None
            self.store.add_images(self.row.id, rows)
            new = position - len(self.images)
            self.images = self.store.images(self.row.id)
            self.index = {img.uid: i for i, img in enumerate(self.images)}
            if new:
                self.ratings.grow(new)
                self.selector.reset()
            return report

    def add_folder(self, folder: Path | str, recursive: bool = False) -> IntakeReport:
        return self.add_files(folder_files(Path(folder), recursive))

    def add_zip(self, archive: Path | str, unpack_to: Path | str) -> IntakeReport:
        return self.add_folder(extract_zip(Path(archive), Path(unpack_to)), recursive=True)

    def set_excluded(self, uid: str, excluded: bool = True, reason: str | None = None) -> None:
        with self._lock:
            i = self.index.get(uid)
            if i is None:
                raise UnknownImageError(uid, self.name)
            self.store.set_excluded(self.row.id, uid, excluded, reason)
            self.images[i] = self.store.images(self.row.id)[i]
            self.ratings.pool.active[i] = not excluded
            self.selector.reset()

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

    def _matchup(self, a: Assignment) -> Matchup:
        return Matchup(
            a.pair_id,
            self.image(a.left_uid),
            self.image(a.right_uid),
            self.row.instruction,
            self.name,
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
            found = self.store.find_assignment(self.row.id, pair_id)
            if found is None:
                if self.store.has_pair(self.row.id, pair_id):
                    raise DuplicateVoteError("this pair was already answered; it counts once")
                raise UnknownPairError(
                    f"pair {pair_id!r} is not open in project {self.name!r}: it was never shown "
                    "or was replaced by a newer pair; ask for the next pair"
                )
            _, a = found
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
            found = self.store.find_assignment(self.row.id, pair_id)
            if found is None:
                if self.store.has_pair(self.row.id, pair_id):
                    raise DuplicateVoteError("this pair was already answered or skipped")
                raise UnknownPairError(f"pair {pair_id!r} was never shown in project {self.name!r}")
            _, a = found
            self.store.add_skip(self.row.id, pair_id, a.left_uid, a.right_uid, labeler)
            i, j = self.index[a.left_uid], self.index[a.right_uid]
            self._previous[labeler] = _key(i, j)
            self._reserved.pop(_key(i, j), None)

    def undo(self, labeler: str) -> VoteRow | None:
        """Undo this labeler's latest vote (marked, never deleted); None if nothing to undo."""
        labeler = _labeler(labeler)
        with self._lock:
            last = self.store.last_vote(self.row.id, labeler)
            if last is None:
                return None
            self.store.mark_undone(last.id)
            self._rewind(last.id)
            self._previous.pop(labeler, None)
            return last

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

    # --- settings ---------------------------------------------------------------------
    def update(self, instruction: str | None = None, **settings) -> None:
        """Change the instruction or settings (strategy, budget, rating preset, ...)."""
        unknown = (
            set(settings)
            - set(DEFAULT_SETTINGS)
            - {"mu", "sigma", "beta", "tau", "draw_probability"}
        )
        if unknown:
            raise StudioError(f"unknown project settings: {', '.join(sorted(unknown))}")
        with self._lock:
            merged = {**self.row.settings, **settings}
            RatingConfig.from_settings({**DEFAULT_SETTINGS, **merged})  # validate first
            from ranker.selection import make_selector

            make_selector(merged.get("strategy", "active"))  # validate the name
            self.store.update_project(self.row.id, instruction=instruction, settings=merged)
            self._reload()

    # --- results ----------------------------------------------------------------------
    def leaderboard(self, order: str = "conservative") -> list[dict]:
        """Rows sorted best first by ``conservative`` (mu - 3 sigma), ``mu`` or ``refit``."""
        pool, r = self.ratings.pool, self.ratings
        keys = {"conservative": pool.mu - 3.0 * pool.sigma, "mu": pool.mu}
        if order == "refit":
            from ranker.btfit import bt_fit

            first, second, result = pool.history()
            keys["refit"] = bt_fit(pool.n, first, second, result)[0]
        if order not in keys:
            raise StudioError("order must be one of conservative, mu, refit")
        sort_key = keys[order]
        ranked = sorted(range(pool.n), key=lambda i: (self.images[i].excluded, -sort_key[i]))
        rows = []
        for rank, i in enumerate(ranked, start=1):
            img = self.images[i]
            rows.append(
                {
                    "rank": rank,
                    "uid": img.uid,
                    "path": img.path,
                    "mu": float(pool.mu[i]),
                    "sigma": float(pool.sigma[i]),
                    "conservative": float(pool.mu[i] - 3.0 * pool.sigma[i]),
                    "wins": r.wins[i],
                    "losses": r.losses[i],
                    "ties": r.ties[i],
                    "comparisons": int(pool.counts[i]),
                    "excluded": img.excluded,
                    "exclusion_reason": img.exclusion_reason or "",
                }
            )
        return rows

    def progress(self) -> Progress:
        from ranker.selection import ranking_confidence

        pool = self.ratings.pool
        active = int(pool.active.sum())
        budget = self.settings.get("budget")
        votes = pool.n_votes
        return Progress(
            votes=votes,
            budget=budget,
            images=pool.n,
            active_images=active,
            votes_per_image=votes / max(active, 1),
            confidence=float(ranking_confidence(pool)) if active > 1 else 1.0,
            done=bool(budget) and votes >= budget,
        )

    def votes(self, include_undone: bool = False) -> list[VoteRow]:
        return self.store.votes(self.row.id, include_undone)


class Studio:
    """All projects in one SQLite file; hands out one live session per project."""

    def __init__(self, db_path: str | Path) -> None:
        self.store = Store(db_path)
        self._sessions: dict[str, ProjectSession] = {}
        self._lock = threading.Lock()

    def list_projects(self) -> list[ProjectRow]:
        return self.store.list_projects()

    def create_project(
        self, name: str, instruction: str | None = None, **settings
    ) -> ProjectSession:
        merged = {**DEFAULT_SETTINGS, **settings}
        RatingConfig.from_settings(merged)
        from ranker.selection import make_selector

        make_selector(merged["strategy"])
        self.store.create_project(name, instruction, settings)
        return self.project(name)

    def project(self, name: str) -> ProjectSession:
        with self._lock:
            if name not in self._sessions:
                self._sessions[name] = ProjectSession(self.store, self.store.get_project(name))
            return self._sessions[name]

    def delete_project(self, name: str) -> None:
        with self._lock:
            row = self.store.get_project(name)
            self.store.delete_project(row.id)
            self._sessions.pop(name, None)

    def close(self) -> None:
        self.store.close()


def _key(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)


def _labeler(labeler: str | None) -> str:
    labeler = (labeler or "").strip()
    if not labeler:
        raise StudioError("every vote needs a labeler name or session id")
    if len(labeler) > 200:
        raise StudioError("labeler names are limited to 200 characters")
    return labeler
