"""Learning-rate schedules: torch's and transformers' own, built as upstream builds them.

Upstream JoyQuality's ``train.py`` steps one scheduler per optimizer step: torch's
``OneCycleLR`` for ``onecycle`` and transformers' warm-up schedules for the others.
We do the same, so the curves are the libraries' curves (golden tests pin them):

- ``onecycle``: ``OneCycleLR(max_lr, total_steps, pct_start=warmup/total)``: cosine from
  peak/25 up to the peak, then cosine down to peak/(25 * 1e4) at the last step. Two
  deliberate differences from upstream's call: the warm-up length is ``warmup_samples``
  (upstream left ``pct_start`` at torch's 0.3 and ignored its own warm-up setting), and
  momentum is not cycled (``cycle_momentum=False``), so ``adam_beta1`` is what it says;
- ``cosine``: ``get_cosine_schedule_with_warmup`` (linear warm-up from 0, cosine to 0);
- ``linear``: ``get_linear_schedule_with_warmup``;
- ``constant``: ``get_constant_schedule_with_warmup``.

Example::

    scheduler = make_scheduler(optimizer, "cosine", total=100, warmup=10)
    lr_curve("cosine", 100, 10)[0]  # 0.0: transformers' warm-up starts at zero
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR

from training.config import SCHEDULERS

ONECYCLE_DIV = 25.0  # torch's default div_factor (start = peak / 25)
ONECYCLE_FINAL_DIV = 1e4  # torch's default final_div_factor (end = start / 1e4)


def make_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, total: int, warmup: int
) -> LRScheduler:
    """The scheduler of ``kind`` over ``total`` optimizer steps with ``warmup`` warm-up steps.

    Stepped once per optimizer step; its state goes into checkpoints. Raises
    ``ValueError`` for an unknown kind or inconsistent step counts.
    """
    if kind not in SCHEDULERS:
        raise ValueError(f"unknown lr_scheduler {kind!r}; choose one of {SCHEDULERS}")
    if total <= 0 or not 0 <= warmup <= total:
        raise ValueError(f"need total > 0 and 0 <= warmup <= total, got {total}, {warmup}")
    if kind == "onecycle":
        # torch's OneCycleLR divides by the warm-up phase's length in steps minus one, so a
        # one-step warm-up raises ZeroDivisionError; one step of warm-up is treated as none.
        warmup = 0 if warmup == 1 else warmup
        return OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total,
            pct_start=warmup / total,
            div_factor=ONECYCLE_DIV,
            final_div_factor=ONECYCLE_FINAL_DIV,
            cycle_momentum=False,
        )
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    if kind == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total)
    if kind == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, total)
    return get_constant_schedule_with_warmup(optimizer, warmup)


def lr_curve(kind: str, total: int, warmup: int) -> list[float]:
    """The multiplier of the peak rate at each of the ``total`` optimizer steps (for plots
    and tests), read off the real scheduler on a throwaway optimizer."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = make_scheduler(optimizer, kind, total, warmup)
    curve = []
    for _ in range(total):
        curve.append(float(scheduler.get_last_lr()[0]))
        optimizer.step()
        scheduler.step()
    return curve
