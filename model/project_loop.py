"""Attach a quality model to a ranking project: its embeddings and base scores per image.

The model in the loop (:mod:`ranker.attached`) needs, for every image of the project,
the pooled embedding of the model's backbone and the model's own score (the base head).
Both come from one backbone pass per image, through the shared embedding cache
(:mod:`model.embeddings`: keyed by backbone fingerprint and image bytes, under
``<data dir>/embeddings``), so re-attaching, another project with the same pictures
or head-only training never pays the backbone twice. The base score is the model's
linear head applied to the cached embedding.

An image the model cannot read (a file damaged after intake) gets the mean embedding
and the mean score: the head places it in the middle until votes place it.

Large projects: the backbone pass is the whole cost; on a Space it runs on the GPU
(the app wraps the call). Every vector is cached as soon as it is computed, so an
interrupted attach resumes. The sharded scorer (``python -m model.score``) does not
write embeddings yet; writing them there is the way to many GPUs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.images import ImageReadError
from model.embeddings import EmbeddingCache, backbone_fingerprint, embed_images

EMBEDDINGS_DIRNAME = "embeddings"


def cache_root(data_dir: str | Path) -> Path:
    """The shared embedding cache of an app's data folder."""
    return Path(data_dir) / EMBEDDINGS_DIRNAME


def image_features(
    model, images, cache: EmbeddingCache, *, batch_size: int = 16
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """uids, embeddings (n, hidden), base scores (n,) of ``images`` (the project's image
    rows), and the names of those that could not be read."""
    items = [(img.uid, img.path, img.name) for img in images]
    hidden = model.config.vision_config.hidden_size
    emb = np.zeros((len(items), hidden), dtype=np.float32)
    ok = np.zeros(len(items), dtype=bool)
    unreadable: list[str] = []

    def run(idx: list[int]) -> None:
        out = embed_images(
            model,
            [items[i][1] for i in idx],
            cache,
            names=[items[i][2] for i in idx],
            batch_size=batch_size,
        )
        emb[idx] = out.numpy()
        ok[idx] = True

    try:
        run(list(range(len(items))))
    except (ImageReadError, OSError):  # find the bad ones; the rest still count
        for i in range(len(items)):
            try:
                run([i])
            except (ImageReadError, OSError):
                unreadable.append(items[i][2])
    base = np.zeros(len(items), dtype=np.float64)
    if ok.any():
        with torch.no_grad():
            scores = model.head(torch.from_numpy(emb[ok]).to(model.device))
        base[ok] = scores.float().cpu().numpy()
        emb[~ok] = emb[ok].mean(axis=0)
        base[~ok] = base[ok].mean()
    return [u for u, _, _ in items], emb, base, unreadable


def attach_model(
    session, model, source: str, data_dir: str | Path, label: str | None = None
) -> dict:
    """Embed every image of the project with ``model`` and attach it (see module doc)."""
    if len(session.images) < 2:
        raise ValueError(f"project {session.name!r} needs at least two images")
    fingerprint = backbone_fingerprint(model)
    cache = EmbeddingCache(cache_root(data_dir), fingerprint)
    uids, emb, base, unreadable = image_features(model, session.images, cache)
    info = {"source": str(source), "label": label or Path(str(source)).name or str(source),
            "fingerprint": fingerprint}  # fmt: skip
    session.attach_model(info, uids, emb, base)
    return {"images": len(uids), "unreadable": unreadable, **info}


def fill_missing(session, model, data_dir: str | Path) -> int:
    """Embed the images added since the model was attached; returns how many."""
    info = session.attached_model
    if info is None:
        return 0
    todo = set(session.images_without_features())
    if not todo:
        return 0
    cache = EmbeddingCache(
        cache_root(data_dir), info.get("fingerprint") or backbone_fingerprint(model)
    )
    new = [img for img in session.images if img.uid in todo]
    uids, emb, base, _ = image_features(model, new, cache)
    session.add_model_features(uids, emb, base)
    return len(todo)
