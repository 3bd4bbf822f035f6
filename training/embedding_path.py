"""Head-only runs on cached embeddings: the frozen backbone runs once per image, not per step.

In head mode only ``classifier`` trains, so ``model(pixels)`` is
``head(pooled(pixels))`` with ``pooled`` fixed for the whole run. The pooled vectors
of every image of the run are computed once (under the run's autocast, on its device)
and stored with :class:`model.embeddings.EmbeddingCache`, so the next run over the same
images and base model starts at once. Training and test scoring then feed those
vectors to the same model object, which runs its head on 2-D input: the numbers are
the ones the full forward gives (tests check it to 1e-5).

Example::

    table = embedding_tables(model, data, config, accelerator)   # [images, hidden]
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from model.embeddings import EmbeddingCache, embed_images
from model.preprocess import normalize
from training.config import TrainConfig
from training.data import ParquetCell, PreferenceData

log = logging.getLogger("training")


def default_embedding_dir() -> Path:
    """``$STUDIO_DATA_DIR/embeddings`` for the app's runs, else the user's cache folder."""
    data_dir = os.environ.get("STUDIO_DATA_DIR")
    if data_dir:
        return Path(data_dir) / "embeddings"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "preference-studio" / "embeddings"


def embedding_tables(
    model: torch.nn.Module, data: PreferenceData, config: TrainConfig, accelerator
) -> torch.Tensor:
    """Pooled embedding of every image used by ``data`` (zeros for unused rows)."""
    began = time.perf_counter()
    used = np.union1d(data.train.images(), data.test.images())
    precision = str(accelerator.mixed_precision)
    root = Path(config.embedding_dir).expanduser() if config.embedding_dir else None
    cache = EmbeddingCache.for_model(root or default_embedding_dir(), model, precision)
    items = [_bytes(data.sources[int(g)]) for g in used]
    with accelerator.main_process_first():  # the main process fills the cache, others read it
        vectors = embed_images(
            model,
            items,
            cache,
            names=[data.keys[int(g)] for g in used],
            batch_size=2 * config.device_batch_size,
            num_workers=config.num_workers if len(items) >= 64 else 0,
            autocast=accelerator.autocast,
            device=accelerator.device,
        )
    table = torch.zeros(len(data.keys), vectors.shape[1], dtype=torch.float32)
    table[torch.as_tensor(used, dtype=torch.long)] = vectors
    log.info(
        "embeddings of %d images ready in %.1f s (cache %s)",
        used.size, time.perf_counter() - began, cache.folder,
    )  # fmt: skip
    return table


def _bytes(source) -> str | bytes:
    return source.read() if isinstance(source, ParquetCell) else source


@torch.no_grad()
def frozen_loader(model: torch.nn.Module, loader, accelerator) -> list[dict[str, torch.Tensor]]:
    """A robustness loader's batches with each pixel tensor replaced by its pooled embedding.

    The damaged copies are fixed per image and seed, and the backbone is frozen, so one
    pass gives what every later evaluation needs; the batches keep their positions.
    """
    inner = accelerator.unwrap_model(model)
    was_training = inner.training
    inner.eval()
    out = []
    try:
        for batch in loader:
            frozen = {}
            for key, value in batch.items():
                if value.dtype == torch.uint8:
                    with accelerator.autocast():
                        value = inner.pooled(normalize(value)).float()
                frozen[key] = value
            out.append(frozen)
    finally:
        inner.train(was_training)
    return out
