"""Head-only training on cached embeddings: the same numbers as the full forward, once per image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.embeddings import EmbeddingCache, backbone_fingerprint, embed_images, image_digest
from model.joyquality import build_tiny_model
from model.preprocess import batch_pixel_values
from tests.training.test_train_loop import config
from training.config import TrainConfig
from training.loop import train


def head_config(data, out, base, **overrides) -> TrainConfig:
    values = dict(
        train_mode="head",
        lr_scheduler="onecycle",
        learning_rate=0.05,
        warmup_samples=16,
        batch_size=16,
        device_batch_size=4,
        total_samples=96,
        test_every=32,
        eval_at_start=True,
        embedding_dir=str(out.parent / "embeddings"),
    )
    values.update(overrides)
    return config(data, out, base, **values)


def test_cached_embeddings_give_the_full_forward_result(quality_json, tiny_base, tmp_path):
    slow_model, fast_model = build_tiny_model(seed=3), build_tiny_model(seed=3)
    slow = train(
        head_config(quality_json, tmp_path / "slow", tiny_base, cache_embeddings=False),
        model=slow_model,
    )
    fast = train(head_config(quality_json, tmp_path / "fast", tiny_base), model=fast_model)
    start = build_tiny_model(seed=3).classifier.weight
    assert not torch.equal(slow_model.classifier.weight, start)  # it did train
    torch.testing.assert_close(
        fast_model.classifier.weight, slow_model.classifier.weight, rtol=0, atol=1e-5
    )
    assert [h["step"] for h in fast.history] == [h["step"] for h in slow.history] == [0, 2, 4, 6]
    for a, b in zip(fast.history, slow.history, strict=True):
        for key in ("accuracy", "nll", "brier", "jpeg_accuracy", "lowres_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), key


def test_embeddings_are_computed_once_per_image_and_backbone(tmp_path):
    from PIL import Image

    images = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(path)
        images.append(path)
    model = build_tiny_model(seed=4)
    cache = EmbeddingCache.for_model(tmp_path / "cache", model)
    first = embed_images(model, [*images, images[0].read_bytes()], cache)
    assert len(cache) == 3  # the bytes copy of image 0 is the same image
    expected = model.pooled(batch_pixel_values(images, model.image_size))
    torch.testing.assert_close(first[:3], expected.detach())
    torch.testing.assert_close(first[3], first[0])
    # A new head over the same backbone shares the cache; other backbone weights do not.
    retrained = build_tiny_model(seed=4)
    torch.nn.init.normal_(retrained.classifier.weight)
    assert backbone_fingerprint(retrained) == cache.fingerprint
    assert backbone_fingerprint(build_tiny_model(seed=5)) != cache.fingerprint
    assert backbone_fingerprint(model, "bf16") != cache.fingerprint
    cache.put(image_digest(images[1].read_bytes()), np.full(8, 7.0, np.float32))
    again = embed_images(model, images, cache)  # read from disk, not recomputed
    assert torch.equal(again[1], torch.full((8,), 7.0))


def test_small_data_sizes_the_run_keeps_the_best_and_warns(quality_json, tiny_base, tmp_path):
    out = tmp_path / "sized"
    cfg = head_config(quality_json, out, tiny_base, total_samples=0, batch_size=256,
                      warmup_samples=1500, test_every=2000, learning_rate=0.5)  # fmt: skip
    result = train(cfg, model=build_tiny_model(seed=6))
    saved = TrainConfig.load(out)
    # 48 training pairs: batch capped at 48, 50 steps, evaluated every 5 steps.
    assert (saved.batch_size, saved.total_samples, saved.test_every) == (48, 2400, 240)
    assert result.steps == 50 and len(result.history) == 11
    best = min(result.history, key=lambda h: h["nll"])
    assert result.best_step == best["step"]
    assert result.metrics["nll"] == best["nll"]
    assert any("test pairs" in w for w in result.warnings)
    assert any("training pairs" in w for w in result.warnings)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["warnings"] == result.warnings
    final = json.loads((out / "final" / "train_config.json").read_text())
    assert final["total_samples"] == 2400
