"""JoyQuality and ranking projects: pre-ranking, and bucket calibration from human votes.

Pre-ranking: the model scores a project's images and the ranker seeds each image's
starting rating from its score (``ProjectSession.pre_rank``: scores enter through
their ranks, shrunk by how often the model agrees with people), so the pair selector
spends human votes where the model is unsure instead of on obvious pairs.

Calibration: a project's votes are preference pairs, exactly what method B needs to
fit tau; ties count as 0.5.

Only the ranker's public session API is used (``images``, ``votes()``, ``pre_rank``).
"""

from __future__ import annotations

import math

import numpy as np

from model.calibrate import Calibration, fit_calibration
from model.scoring import score_images


def project_scores(
    session, model, *, batch_size: int = 32, num_workers: int = 0
) -> dict[str, float]:
    """uid -> score for every readable, not excluded image of the project."""
    images = [img for img in session.images if not img.excluded]
    rows = score_images(
        model,
        [(img.uid, img.path) for img in images],
        batch_size=batch_size,
        num_workers=num_workers,
    )
    return {r["path"]: r["score"] for r in rows if r["error"] is None and math.isfinite(r["score"])}


def prerank_project(session, model, agreement: float = 0.75, **score_options) -> dict:
    """Score the project's images and seed its ratings from the scores."""
    scores = project_scores(session, model, **score_options)
    if not scores:
        raise ValueError(f"project {session.name!r} has no readable images to pre-rank")
    seeded = session.pre_rank(scores, agreement=agreement)
    return {"seeded": seeded, "images": len(session.images), "agreement": agreement}


def vote_pairs(session) -> tuple[list[str], list[str], list[float]]:
    """(first uids, second uids, labels) of the project's votes; 1 = first won, 0.5 = tie."""
    first, second, labels = [], [], []
    for vote in session.votes():
        winner, loser = vote.winner_loser
        first.append(winner)
        second.append(loser)
        labels.append(0.5 if vote.outcome == "tie" else 1.0)
    return first, second, labels


def calibration_from_project(
    session, model, dataset_scores, labels: tuple[str, ...] | None = None, **score_options
) -> Calibration:
    """Method B: tau from the project's votes (scored by ``model``), b from dataset_scores."""
    first, second, y = vote_pairs(session)
    if not first:
        raise ValueError(f"project {session.name!r} has no votes to fit the calibration on")
    scores = project_scores(session, model, **score_options)
    keep = [i for i in range(len(first)) if first[i] in scores and second[i] in scores]
    if not keep:
        raise ValueError(f"none of the voted images of {session.name!r} could be scored")
    sw = np.array([scores[first[i]] for i in keep])
    sl = np.array([scores[second[i]] for i in keep])
    finite = np.asarray(dataset_scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return fit_calibration(
        finite if finite.size else np.array(list(scores.values())),
        sw,
        sl,
        labels=labels,
        pair_labels=np.array([y[i] for i in keep]),
    )
