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
interrupted attach resumes. For many images on many GPUs, run the sharded scorer
with ``--embeddings <data dir>/embeddings`` first (``python -m model.score``): it
fills the same cache, and attaching then only reads it. The cache is keyed by the
precision the backbone ran in too (``model.embeddings.precision_of``): score in the
precision the app attaches in (fp32 on a CPU server, bf16 on a GPU one).

Images added later (:func:`embed_on_intake`) get their vectors when the attached
model can be loaded; otherwise they wait, named in the project's model status, and
the project's own strategy ranks until they have them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.images import ImageReadError
from model.embeddings import EmbeddingCache, backbone_fingerprint, embed_images, precision_of

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
    precision = precision_of(model)
    fingerprint = backbone_fingerprint(model, precision)
    cache = EmbeddingCache(cache_root(data_dir), fingerprint)
    uids, emb, base, unreadable = image_features(model, session.images, cache)
    info = {"source": str(source), "label": label or Path(str(source)).name or str(source),
            "fingerprint": fingerprint, "precision": precision}  # fmt: skip
    session.attach_model(info, uids, emb, base)
    return {"images": len(uids), "unreadable": unreadable, **info}


def fill_missing(session, model, data_dir: str | Path) -> int:
    """Embed the images added since the model was attached; returns how many.

    ``model`` must be the attached one (same backbone weights, same precision): a
    model whose weights changed since (a demo model rebuilt, a run redone under the
    same name) raises ValueError, since its vectors would not match the others. A
    project without any stored features (imported with its settings) is attached
    afresh instead.
    """
    info = session.attached_model
    if info is None:
        return 0
    todo = set(session.images_without_features())
    if not todo:
        return 0
    fingerprint = backbone_fingerprint(model, info.get("precision", "fp32"))
    if info.get("fingerprint") and fingerprint != info["fingerprint"]:
        if len(todo) == len(session.images):  # nothing stored yet: attach afresh
            attach_model(session, model, info["source"], data_dir, info.get("label"))
            return len(todo)
        raise ValueError(
            f"the model {info.get('label') or info['source']!r} is not the one attached "
            "(its weights or precision differ): attach it again to re-embed every image"
        )
    cache = EmbeddingCache(cache_root(data_dir), fingerprint)
    new = [img for img in session.images if img.uid in todo]
    uids, emb, base, _ = image_features(model, new, cache)
    session.add_model_features(uids, emb, base)
    return len(todo)


@dataclass(frozen=True)
class IntakeEmbeddings:
    """What happened to the new images' embeddings after an intake."""

    embedded: int = 0
    waiting: tuple[str, ...] = ()  # names of the images still without embeddings
    reason: str = ""  # why they wait (the model could not be loaded or run)

    def summary(self, label: str = "the attached model") -> str:
        """One line for the intake report; empty when there was nothing to do."""
        if self.waiting:
            shown = ", ".join(self.waiting[:10]) + (" ..." if len(self.waiting) > 10 else "")
            return (
                f"{len(self.waiting)} new images wait for embeddings of {label} ({shown}): "
                f"{self.reason}. The project's own pair strategy ranks until they have them; "
                "attach the model again once it can be loaded."
            )
        return f"embedded {self.embedded} new images with {label}" if self.embedded else ""


def load_attached(source: str, data_dir: str | Path):
    """The attached model by its app name (``demo-quality``, ``run: x``, ``head: p``,
    a Hub id or a folder), as the command line loads it: cached or downloadable only."""
    from model.joyquality import load_model
    from model.named import local_model

    return load_model(local_model(source, data_dir))


def embed_on_intake(
    session, data_dir: str | Path, load: Callable[[str], object] | None = None
) -> IntakeEmbeddings:
    """After images were added: embed those the attached model has not seen yet.

    ``load(source)`` gives the attached model (default :func:`load_attached`). When it
    cannot (offline and not cached, the run deleted, files not a model), nothing is
    lost: the images wait, and the answer names them and says why.
    """
    from model.checkpoint import ModelUnavailableError, NotSiglipCheckpointError

    info = session.attached_model
    if info is None:
        return IntakeEmbeddings()
    todo = set(session.images_without_features())
    if not todo:
        return IntakeEmbeddings()
    try:
        model = (load or (lambda s: load_attached(s, data_dir)))(str(info["source"]))
        return IntakeEmbeddings(fill_missing(session, model, data_dir))
    except (ModelUnavailableError, NotSiglipCheckpointError, ValueError, OSError) as exc:
        names = tuple(img.name for img in session.images if img.uid in todo)
        return IntakeEmbeddings(0, names, str(exc).rstrip("."))
