"""Setting a run up: what trains, the accelerator, and whether to resume.

Example::

    accelerator = make_accelerator(config, RunFiles(config.output_dir))
    params = configure_model(model, config)
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration

from training.config import MIN_TEST_PAIRS, MIN_TRAIN_PAIRS, ConfigError, TrainConfig
from training.runfiles import RunFiles

# Settings a resumed run must share with the checkpoint it continues.
RESUME_KEYS = (
    "data", "base_model", "train_mode", "batch_size", "total_samples", "seed",
    "lr_scheduler", "learning_rate", "warmup_samples", "weight_decay",
)  # fmt: skip


class RunError(RuntimeError):
    """The run folder does not allow this run (finished, or made with other settings)."""


def configure_model(model: torch.nn.Module, config: TrainConfig) -> list[torch.nn.Parameter]:
    """Pick what trains and return those parameters.

    Head-only freezes the vision tower; full training turns on gradient checkpointing
    when asked. The head's bias is always frozen: the BT loss sees only score
    differences, so the bias gets no gradient and weight decay alone would drift it.
    """
    model.requires_grad_(config.train_mode == "full")
    model.classifier.weight.requires_grad_(True)
    model.classifier.bias.requires_grad_(False)
    if config.train_mode == "full" and config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    return [p for p in model.parameters() if p.requires_grad]


def _mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision
    gpu = torch.cuda.is_available() and not config.cpu
    return "bf16" if gpu and torch.cuda.is_bf16_supported() else "no"


def _trackers(config: TrainConfig) -> list[str] | str | None:
    names = [n.strip() for n in config.report_to.split(",") if n.strip()]
    if not names or names == ["none"]:
        return None
    return "all" if names == ["all"] else names


def make_accelerator(config: TrainConfig, files: RunFiles) -> Accelerator:
    project = ProjectConfiguration(project_dir=str(files.root), logging_dir=str(files.tracker_dir))
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(config),
        cpu=config.cpu,
        log_with=_trackers(config),
        project_config=project,
        step_scheduler_with_optimizer=False,  # we step it once per optimizer step
    )
    per_step = config.device_batch_size * accelerator.num_processes
    if config.batch_size % per_step:
        raise ConfigError(
            f"batch_size {config.batch_size} is not a multiple of device_batch_size x processes "
            f"({config.device_batch_size} x {accelerator.num_processes})"
        )
    accelerator.gradient_accumulation_steps = config.batch_size // per_step
    return accelerator


def small_data_warnings(train_pairs: int, test_pairs: int) -> list[str]:
    """Plain warnings when a split is too small for its numbers to mean much."""
    out = []
    if train_pairs < MIN_TRAIN_PAIRS:
        out.append(
            f"only {train_pairs} training pairs (fewer than {MIN_TRAIN_PAIRS}): the model "
            "can learn little from them; collect more votes"
        )
    if test_pairs < MIN_TEST_PAIRS:
        out.append(
            f"only {test_pairs} test pairs (fewer than {MIN_TEST_PAIRS}): test accuracy and "
            "loss are too noisy to trust, and the best checkpoint is picked on little evidence"
        )
    return out


def check_resume(config: TrainConfig, files: RunFiles) -> Path | None:
    """The checkpoint to continue from, after checking it was made with these settings."""
    if files.final_dir.exists() and config.resume:
        raise RunError(f"{files.root} already holds a finished run; choose a new output_dir")
    checkpoints = files.checkpoints()
    if not config.resume or not checkpoints:
        return None
    saved = TrainConfig.load(checkpoints[-1])
    # A run sized to its data saved the length it chose; the same data sizes it alike.
    sized = ("batch_size", "total_samples", "warmup_samples") if config.sized_to_data else ()
    changed = [k for k in RESUME_KEYS if k not in sized and getattr(saved, k) != getattr(config, k)]
    if changed:
        raise RunError(
            f"{checkpoints[-1]} was made with different {changed}; use a new output_dir "
            "or pass --no-resume to start over"
        )
    return checkpoints[-1]
