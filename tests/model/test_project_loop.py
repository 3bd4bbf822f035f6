"""Attaching the demo model to the demo project: embeddings once per image, cached by
backbone and content; new and unreadable images handled; the ranker never sees torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import demo_model
from model.embeddings import EmbeddingCache
from model.joyquality import load_model
from model.project_loop import attach_model, cache_root, fill_missing
from ranker.attached import PrequentialLoop
from tests.ui.helpers import corrupt, make_context, make_images
from ui.demo import DEMO_PROJECT, ensure_demo_project


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo project and a quickly built demo model (the recipe's shape, few steps)."""
    root = tmp_path_factory.mktemp("loop")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_model, "STEPS", 3)
        mp.setattr(demo_model, "VARIANTS", 1)
        folder = demo_model.ensure_demo_model(root / "models")
    return root, folder, load_model(folder, device="cpu")


def test_attach_embeds_every_image_once_and_reuses_the_cache(demo, tmp_path):
    root, folder, model = demo
    ctx = make_context(tmp_path)
    ensure_demo_project(ctx)
    session = ctx.studio.project(DEMO_PROJECT)
    info = attach_model(session, model, str(folder), ctx.data_dir, "demo")
    assert info["images"] == 27 and info["unreadable"] == []
    assert isinstance(session.selector, PrequentialLoop)
    stored = session.stored_features()
    assert stored.embeddings.shape == (27, model.config.vision_config.hidden_size)
    # the base scores are the model's own scores of the images
    paths = [img.path for img in session.images[:3]]
    from model.scoring import score_images

    direct = [r["score"] for r in score_images(model, list(zip(paths, paths, strict=True)))]
    assert np.allclose(stored.base_scores[:3], direct, atol=1e-4)
    cache = EmbeddingCache(cache_root(ctx.data_dir), info["fingerprint"])
    assert len(cache) == 27
    # attaching again reads the cache: the backbone is not run
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model, "pooled", lambda *a: calls.append(1) or torch.zeros(0))
        attach_model(session, model, str(folder), ctx.data_dir, "demo")
    assert calls == [] and np.array_equal(session.stored_features().embeddings, stored.embeddings)


def test_new_and_unreadable_images(demo, tmp_path):
    _, folder, model = demo
    ctx = make_context(tmp_path)
    ensure_demo_project(ctx)
    session = ctx.studio.project(DEMO_PROJECT)
    attach_model(session, model, str(folder), ctx.data_dir)
    extra = make_images(tmp_path / "more", 2)
    session.add_files(extra)
    assert not isinstance(session.selector, PrequentialLoop)  # waiting for two images
    assert fill_missing(session, model, ctx.data_dir) == 2
    assert isinstance(session.selector, PrequentialLoop)
    assert fill_missing(session, model, ctx.data_dir) == 0
    # a file damaged after intake: named, and placed at the mean until votes place it
    corrupt(extra[0])
    session.detach_model()
    info = attach_model(session, model, str(folder), tmp_path / "fresh-cache")
    assert info["unreadable"] == [extra[0].name]
    stored = session.stored_features()
    i = stored.uids.index(session.images[27].uid)
    others = np.delete(stored.embeddings, i, axis=0)
    assert np.allclose(stored.embeddings[i], others.mean(axis=0), atol=1e-5)
