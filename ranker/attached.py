"""A model attached to a project: its image features on disk, and the selector they feed.

The owner may attach a quality model to a project (the app computes each image's
pooled embedding and base score with the model, :mod:`model.project_loop`); from then
on the project's pair selector is the model-in-the-loop one
(:class:`~ranker.selection.model_loop.ModelLoopSelector`) and its ``auto`` ranking
combines the model's online head with the votes. This module is the ranker's side of
that, numpy only (the ranker never imports torch):

- which model is attached lives in the project's settings (``settings["model"]``, a
  small dict: source, label, backbone fingerprint), so a restart keeps it;
- the features live beside the vote database, one file per project
  (``<data dir>/model_loop/project-<id>.npz``: uids, embeddings, base scores), written
  atomically; they are read back on every replay, so no model is loaded after a restart;
- the selector's latest snapshots live beside them (``project-<id>-loop.npz``,
  :mod:`ranker.selection.snapshot_file`), so a restart replays only the votes since the
  last refit; a cache checked against the features, the settings and the vote log;
- :class:`PrequentialLoop` records, for every vote, what the head predicted *before*
  it saw that vote (held-out by construction), from which :func:`loop_status` reports
  the model's agreement with the votes and the share of the ranking that rests on votes.

An image without features (added after attaching, before the app embedded it) turns
the selector back to the project's own strategy until its features arrive: a partial
feature matrix would rank that image by nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ranker.errors import StudioError
from ranker.online_head import HeadFeatures
from ranker.pool import Pool
from ranker.selection.model_loop import ModelLoopSelector

SETTING = "model"  # settings key: {"source", "label", "fingerprint"} or absent/None
FEATURES_DIR = "model_loop"
RECENT = 20  # votes in the "recent agreement" window


def features_path(db_path: str | Path, project_id: int) -> Path:
    """Where a project's features live: beside the vote database, keyed by project id
    (a renamed or re-created project with the same name never reads stale features)."""
    return Path(db_path).parent / FEATURES_DIR / f"project-{project_id}.npz"


def snapshot_path(db_path: str | Path, project_id: int) -> Path:
    """Where the selector's snapshots of a project live: beside its features."""
    return Path(db_path).parent / FEATURES_DIR / f"project-{project_id}-loop.npz"


@dataclass(frozen=True)
class StoredFeatures:
    """Per-image embeddings (n, d) float32 and base-model scores (n,), keyed by uid."""

    uids: list[str]
    embeddings: np.ndarray
    base_scores: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.uids)
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
            raise StudioError(f"embeddings must be ({n}, dims), got {self.embeddings.shape}")
        if self.base_scores.shape != (n,):
            raise StudioError(f"base scores must be ({n},), got {self.base_scores.shape}")
        if not (np.all(np.isfinite(self.embeddings)) and np.all(np.isfinite(self.base_scores))):
            raise StudioError("embeddings and base scores must be finite numbers")

    @classmethod
    def of(cls, uids, embeddings, base_scores) -> StoredFeatures:
        """From plain sequences/arrays (what the model layer hands over)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        return cls([str(u) for u in uids], emb, np.asarray(base_scores, dtype=np.float64))

    def merged(self, other: StoredFeatures) -> StoredFeatures:
        """These features with ``other``'s added (``other`` wins for uids in both)."""
        if self.uids and other.embeddings.shape[1] != self.embeddings.shape[1]:
            raise StudioError(
                f"new embeddings have {other.embeddings.shape[1]} dims, "
                f"the attached model's have {self.embeddings.shape[1]}"
            )
        keep = [i for i, u in enumerate(self.uids) if u not in set(other.uids)]
        return StoredFeatures(
            [self.uids[i] for i in keep] + list(other.uids),
            np.concatenate([self.embeddings[keep], other.embeddings]).astype(np.float32),
            np.concatenate([self.base_scores[keep], other.base_scores]).astype(np.float64),
        )

    def for_images(self, uids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Rows in the project's image order, and the uids that have none."""
        where = {u: i for i, u in enumerate(self.uids)}
        missing = [u for u in uids if u not in where]
        rows = np.array([where.get(u, 0) for u in uids], dtype=np.int64)
        if not self.uids:
            return np.zeros((len(uids), 0), np.float32), np.zeros(len(uids)), list(uids)
        return self.embeddings[rows], self.base_scores[rows], missing


def save_features(path: Path, features: StoredFeatures) -> None:
    """Write atomically (a crash leaves the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            uids=np.array(features.uids, dtype=str),
            embeddings=features.embeddings.astype(np.float32),
            base_scores=features.base_scores.astype(np.float64),
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_features(path: Path) -> StoredFeatures | None:
    """The stored features, or None when there is no (readable) file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return StoredFeatures(
                [str(u) for u in data["uids"]],
                np.asarray(data["embeddings"], dtype=np.float32),
                np.asarray(data["base_scores"], dtype=np.float64),
            )
    except (FileNotFoundError, OSError, KeyError, ValueError, StudioError):
        return None


class PrequentialLoop(ModelLoopSelector):
    """The model-in-the-loop selector, plus the head's held-out prediction of every vote.

    Each vote is predicted by the head as it stood before that vote (the same forecast
    the selector's own guard scores, handed over by :meth:`before_vote`), so the
    agreement is prequential: no vote is ever judged by a head that learnt from it.
    Replays (restart, undo) rebuild the same record: the selector replays the log in
    order and :meth:`rewind` drops what a replay will record again.
    """

    def __init__(self, features: HeadFeatures, **options) -> None:
        self._predictions: list[float] = []
        super().__init__(features, **options)

    def adopt(self, old: ModelLoopSelector) -> None:
        super().adopt(old)
        if isinstance(old, PrequentialLoop):  # the records before a snapshot stay valid
            self._predictions = list(old._predictions)

    def before_vote(self, k: int, p_head: float, p_votes: float, result: float) -> None:
        self._predictions.append(p_head)

    def rewind(self, votes: int) -> None:
        del self._predictions[votes:]

    def record_until(self, votes: int) -> np.ndarray:
        return np.asarray(self._predictions[:votes], dtype=np.float64)

    def restore_record(self, record: np.ndarray | None, votes: int) -> bool:
        if record is None or record.shape != (len(record),) or len(record) < votes:
            return False
        self._predictions = [float(p) for p in record[:votes]]
        return True

    @property
    def predictions(self) -> list[float]:
        """P(first beats second) the head gave each vote before seeing it, in log order."""
        return list(self._predictions)


@dataclass(frozen=True)
class LoopStatus:
    """What the Ranking tab shows about the attached model."""

    attached: bool
    label: str = ""
    ready: bool = False  # features cover every image: the model-in-the-loop selector runs
    missing: int = 0  # images still without features
    model_on: bool = False  # the guard lets the model pick and rank
    votes_judged: int = 0  # non-tie votes predicted before they were used
    agreement: float | None = None  # share of them the head called right
    recent_agreement: float | None = None  # the same over the last RECENT of them
    on_votes: float = 0.0  # share of the (not excluded) images ranked by their own votes
    waiting: tuple[str, ...] = ()  # names of the images still without features (first 20)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def loop_status(
    selector, pool: Pool, info: dict | None, missing: int, waiting: Sequence[str] = ()
) -> LoopStatus:
    """The attached model's standing: held-out agreement and the share resting on votes.
    ``waiting``: names of the images without features (the status names the first ones)."""
    if not info:
        return LoopStatus(attached=False)
    active = pool.active
    on_votes = float((pool.counts[active] > 0).mean()) if active.any() else 0.0
    label = str(info.get("label") or info.get("source") or "model")
    if not isinstance(selector, PrequentialLoop):
        names = tuple(str(w) for w in list(waiting)[:20])
        return LoopStatus(True, label, False, missing, on_votes=on_votes, waiting=names)
    selector.ranking(pool)  # brings the head up to the last vote
    p = np.asarray(selector.predictions, dtype=np.float64)
    decided = np.asarray(pool.result[: len(p)], dtype=np.float64) == 1.0
    right = p[decided] > 0.5  # the first image won these: the head should favour it
    agree = float(right.mean()) if right.size else None
    recent = float(right[-RECENT:].mean()) if right.size else None
    return LoopStatus(
        True, label, True, 0, bool(selector.model_on), int(right.size), agree, recent, on_votes
    )


@dataclass(frozen=True)
class LinearHead:
    """The online head as a linear model on the pooled embedding ``x`` of the attached
    model: ``score = base_weight * base_score(x) + weights . x + bias`` (logits, as the
    head's own), where ``base_score`` is the attached model's linear head. The per-image
    offsets (what each image's own votes add) are not part of it: they belong to the
    project's images, not to a model that scores new ones."""

    base_weight: float
    weights: np.ndarray  # (d,) float64
    bias: float
    votes: int  # votes the head has seen
    model_on: bool  # whether the guard lets this head rank the project
    scores: np.ndarray  # (n,) the head's score of each project image (offsets left out)


def linear_head(selector, pool: Pool) -> LinearHead:
    """The head of a :class:`PrequentialLoop` as it ranks now (online steps included)."""
    if not isinstance(selector, PrequentialLoop):
        raise StudioError("the model in the loop is not running (no model, or images wait)")
    selector.ranking(pool)  # brings the head up to the last vote
    head, fmap = selector.head, selector.features.map
    if fmap is None:
        raise StudioError("these features do not say how they were made from embeddings")
    c, w, b = fmap.linear(head.fit.beta)
    scores = head.phi.astype(np.float64) @ head.fit.beta
    return LinearHead(c, w, b, head.n_votes, bool(selector.model_on), scores)


def ranked_by(selector, pool: Pool) -> np.ndarray:
    """Per image: ``votes`` (its own comparisons place it), ``model`` (the head places
    it) or ``none`` (no votes, and the guard has the model off)."""
    voted = pool.counts > 0
    model = isinstance(selector, PrequentialLoop) and selector.model_on
    return np.where(voted, "votes", "model" if model else "none")


def features_for(
    stored: StoredFeatures | None, uids: Sequence[str]
) -> tuple[HeadFeatures | None, int]:
    """Head features in the project's image order, or None and how many images lack them."""
    if stored is None:
        return None, len(uids)
    emb, base, missing = stored.for_images(uids)
    if missing or len(uids) < 2:
        return None, len(missing)
    return HeadFeatures.from_embeddings(emb, base), 0
