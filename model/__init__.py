"""JoyQuality: load, preprocess, score and bucket images (issue 5).

Modules, lightest first:

- ``calibrate``: scores to quality buckets (equal width, sigmoid tau/b fit, quantile).
- ``preprocess``: decode (EXIF upright, RGB) and the upstream bicubic squash.
- ``checkpoint`` / ``joyquality``: find and load checkpoints; the model with the
  correct ``pooler_output`` forward; ``load_model``, ``build_tiny_model``.
- ``scoring``: batched scoring through a DataLoader, one row per image.
- ``sources`` / ``shards`` / ``score``: the sharded, resumable CLI
  (``python -m model.score INPUT --out scores.parquet``).
- ``inputs`` / ``report`` / ``projects``: what the Scoring tab needs (uploads, tables,
  histogram, pre-ranking and calibration from a ranking project).

Importing this package imports nothing heavy; ``from model import load_model`` works
and imports torch and transformers only then.
"""

from __future__ import annotations

_EXPORTS = {
    "JoyQuality": "model.joyquality",
    "load_model": "model.joyquality",
    "build_tiny_model": "model.joyquality",
    "tiny_config": "model.joyquality",
    "ModelUnavailableError": "model.checkpoint",
    "NotSiglipCheckpointError": "model.checkpoint",
    "Calibration": "model.calibrate",
    "score_images": "model.scoring",
    "win_probability": "model.scoring",
    "open_image": "model.preprocess",
    "to_pixel_values": "model.preprocess",
    "ImageReadError": "common.images",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
