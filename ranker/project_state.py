"""One project's live state, rebuilt from the vote log: images, ratings, pair selector.

Every change writes the database first and then updates memory, so the state is
always a replay of what is stored. Besides the replay this holds the owner's edits
(images, exclusions, pre-ranking, settings) and the read-outs (leaderboard,
progress); the labeling flow on top of it (pairs, votes, skips, undo) is
:class:`ranker.session.ProjectSession`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from common.contracts import TIE
from common.paths import inside
from ranker.attached import (
    SETTING,
    LinearHead,
    LoopStatus,
    PrequentialLoop,
    StoredFeatures,
    features_for,
    features_path,
    linear_head,
    load_features,
    loop_status,
    ranked_by,
    save_features,
    snapshot_path,
)
from ranker.errors import StudioError, UnknownImageError
from ranker.intake import IntakeReport, extract_zip, folder_files, intake_files
from ranker.ratings import RatingConfig, Ratings
from ranker.results import Progress, default_order, leaderboard_rows, progress_of
from ranker.selection.snapshot_file import SnapshotFile
from ranker.store import ImageRow, ProjectRow, Store, VoteRow

DEFAULT_SETTINGS = {
    "strategy": "active",
    "rating_preset": "image_ranker",
    "budget": None,  # total comparisons; None = no budget
    "random_share": 0.5,  # for the Rapidata-style "budget" strategy
    "exclusion_reasons": {},
}


class ProjectState:
    """A project's images, ratings and selector, rebuilt from the vote log when opened."""

    def __init__(self, store: Store, row: ProjectRow) -> None:
        self.store = store
        self.row = row
        self._lock = threading.RLock()
        self._features_key: tuple | None = None  # which features file _features came from
        self._features = None
        self._reload()

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
        if self.attached_model is not None:  # model in the loop, once every image has features
            loop = self._model_loop_selector()
            if loop is not None:
                return loop
        if settings["strategy"] == "budget":
            return make_selector(
                "budget", budget=settings.get("budget"), random_share=settings["random_share"]
            )
        if settings["strategy"] in ("active", "refit_eig"):  # no request waits for a refit
            return make_selector(settings["strategy"], background=True)
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
                if self.attached_model is not None:  # new images wait for their features
                    self.selector = self._make_selector()
                else:
                    self.selector.reset()
            return report

    def add_folder(self, folder: Path | str, recursive: bool = False) -> IntakeReport:
        """Add a folder's images; a link pointing outside the folder is refused, by name."""
        files = folder_files(Path(folder), recursive)
        inside_files = [p for p in files if inside(p, [folder]) is not None]
        report = self.add_files(inside_files)
        report.rejected += [
            (str(p), "links to a file outside the folder; not read")
            for p in files
            if p not in set(inside_files)
        ]
        return report

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
    def leaderboard(self, order: str | None = None) -> list[dict]:
        """Rows sorted best first by ``conservative`` (mu - 3 sigma), ``mu``, ``refit`` or
        ``auto`` (the pair strategy's own ranking, see ``LEADERBOARD_ORDERS``); no order:
        the default every output shares (:func:`ranker.results.default_order`)."""
        order = default_order(order)
        with self._lock:  # the selector's ranking updates its caches
            own = fitted = None
            if order == "auto" and hasattr(self.selector, "ranking"):
                own = self.selector.ranking(self.ratings.pool)
            if order == "refit" and hasattr(self.selector, "refit_scores"):
                fitted = self.selector.refit_scores(self.ratings.pool)  # never waits
            rows = leaderboard_rows(self.ratings, self.images, order, own, fitted)
            if self.attached_model is not None:  # detached: today's rows, unchanged
                marks = ranked_by(self.selector, self.ratings.pool)
                for row in rows:
                    row["ranked_by"] = str(marks[self.index[row["uid"]]])
            return rows

    def progress(self) -> Progress:
        return progress_of(self.ratings, self.settings.get("budget"))

    def votes(self, include_undone: bool = False) -> list[VoteRow]:
        return self.store.votes(self.row.id, include_undone)

    # --- an attached model (model in the loop, :mod:`ranker.attached`) ------------------
    @property
    def attached_model(self) -> dict | None:
        """The attached model's record (source, label, fingerprint), or None."""
        info = self.row.settings.get(SETTING)
        return info if isinstance(info, dict) else None

    @property
    def features_file(self) -> Path:
        return features_path(self.store.path, self.row.id)

    def stored_features(self) -> StoredFeatures | None:
        return load_features(self.features_file)

    def _model_loop_selector(self) -> PrequentialLoop | None:
        """The model-in-the-loop selector on the stored features; None while an image
        lacks them. The principal axes are computed once per features file version."""
        path = self.features_file
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size, tuple(img.uid for img in self.images))
        if self._features_key != key:
            features, _ = features_for(load_features(path), [img.uid for img in self.images])
            self._features_key, self._features = key, features
        if self._features is None:
            return None
        loop = PrequentialLoop(
            self._features, snapshot_file=SnapshotFile(snapshot_path(self.store.path, self.row.id))
        )
        old = getattr(self, "selector", None)  # a reload on the same features: no replay
        if isinstance(old, PrequentialLoop) and old.features is self._features:
            loop.adopt(old)
        return loop

    def attach_model(self, info: dict, uids, embeddings, base_scores) -> None:
        """Attach a model: store its record (source, label, fingerprint) in the settings
        and each image's embedding and base score beside the database (merged with those
        already there for the same backbone), then rebuild the selector."""
        if not isinstance(info, dict) or not info.get("source"):
            raise StudioError("an attached model needs at least its source")
        features = StoredFeatures.of(uids, embeddings, base_scores)
        with self._lock:
            old = self.stored_features()
            same = old is not None and (self.attached_model or {}).get("fingerprint") == info.get(
                "fingerprint"
            )
            save_features(self.features_file, old.merged(features) if same else features)
            self.store.update_project(
                self.row.id, settings={**self.row.settings, SETTING: dict(info)}
            )
            self._reload()

    def add_model_features(self, uids, embeddings, base_scores) -> None:
        """Features of images added since attaching (intake of an attached project)."""
        features = StoredFeatures.of(uids, embeddings, base_scores)
        with self._lock:
            if self.attached_model is None:
                raise StudioError(f"no model is attached to project {self.name!r}")
            old = self.stored_features()
            save_features(self.features_file, old.merged(features) if old else features)
            self.selector = self._make_selector()

    def detach_model(self) -> bool:
        """Back to the project's own strategy, exactly as if no model had been attached.
        Returns False when none was. The features file and the selector's snapshots go;
        the embedding cache stays."""
        with self._lock:
            if self.attached_model is None:
                return False
            settings = {k: v for k, v in self.row.settings.items() if k != SETTING}
            self.store.update_project(self.row.id, settings=settings)
            self.features_file.unlink(missing_ok=True)
            snapshot_path(self.store.path, self.row.id).unlink(missing_ok=True)
            self._reload()
            return True

    def images_without_features(self) -> list[str]:
        """Uids of images the attached model has not embedded yet."""
        stored = self.stored_features()
        known = set(stored.uids) if stored else set()
        return [img.uid for img in self.images if img.uid not in known]

    def model_status(self) -> LoopStatus:
        """Held-out agreement of the attached model with the votes, and what rests on votes."""
        with self._lock:
            info = self.attached_model
            waiting = self.images_without_features() if info else []
            names = [self.images[self.index[u]].name for u in waiting[:20]]
            return loop_status(self.selector, self.ratings.pool, info, len(waiting), names)

    def online_head(self) -> LinearHead:
        """The attached model's online head as a linear model on its embeddings (to export
        as a model of its own); StudioError while the model in the loop is not running."""
        with self._lock:
            return linear_head(self.selector, self.ratings.pool)
