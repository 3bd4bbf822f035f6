"""Learning-rate schedules, as a pure factor of the peak rate per optimizer step.

``lr_factor(kind, k, total, warmup)`` is the multiplier of the peak learning rate for
optimizer step ``k`` (0-based) of ``total``, with ``warmup`` warmup steps:

- ``onecycle``: cosine from peak/25 up to the peak over the warmup steps, then cosine
  down to peak/250000 at the last step (torch's OneCycleLR shape, but its warmup length
  is ``warmup_samples``, which upstream's version ignored; momentum is not cycled);
- ``cosine``: linear warmup, then cosine to 0;
- ``linear``: linear warmup, then linear to 0;
- ``constant``: linear warmup, then the peak.

Example: ``lr_factor("cosine", 0, 100, 10) == 0.1``.
"""

from __future__ import annotations

import math

import torch

from training.config import SCHEDULERS

ONECYCLE_DIV = 25.0
ONECYCLE_FINAL_DIV = 1e4


def _cos_between(start: float, end: float, fraction: float) -> float:
    fraction = min(max(fraction, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def lr_factor(kind: str, step: int, total: int, warmup: int) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (see module doc)."""
    if kind not in SCHEDULERS:
        raise ValueError(f"unknown lr_scheduler {kind!r}; choose one of {SCHEDULERS}")
    if total <= 0 or not 0 <= warmup <= total:
        raise ValueError(f"need total > 0 and 0 <= warmup <= total, got {total}, {warmup}")
    if kind == "onecycle":
        start = 1.0 / ONECYCLE_DIV
        if step < warmup:
            return _cos_between(start, 1.0, step / warmup)
        rest = max(total - 1 - warmup, 1)
        return _cos_between(1.0, start / ONECYCLE_FINAL_DIV, (step - warmup) / rest)
    if step < warmup:
        return (step + 1) / warmup
    fraction = (step - warmup) / max(total - warmup, 1)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * fraction))
    if kind == "linear":
        return 1.0 - fraction
    return 1.0


def make_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, total: int, warmup: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping once per optimizer step; its state goes into checkpoints."""
    lr_factor(kind, 0, total, warmup)  # validate now, not at the first step
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(kind, step, total, warmup)
    )
