"""The one typed configuration of a fine-tuning run, and the presets upstream found to work.

Every field carries a help string: the CLI builds its options from them, and the whole
config is saved as ``train_config.json`` beside the run, each checkpoint and the final
model, so a run can always be reproduced or resumed.

Example::

    cfg = apply_preset(TrainConfig(data="pairs.json", output_dir="runs/me"), "personal")
    cfg.validate()
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.contracts import DEFAULT_MODEL_ID

SCHEDULERS = ("onecycle", "cosine", "linear", "constant")
TRAIN_MODES = ("head", "full")
PRECISIONS = ("auto", "bf16", "fp16", "no")
DATA_KINDS = ("auto", "json", "dataset", "project")
RANK_BY = ("mu", "conservative")
CONFIG_FILE = "train_config.json"

# Length of a run sized to its data (total_samples=0). Upstream's personal recipe is
# about 3 passes over ~6k pairs (20k samples); a small project needs more passes to move
# the head at all, and the best evaluation (lowest test loss) is kept, so overshooting
# costs only time, which the embedding cache makes small.
AUTO_EPOCHS = 10
AUTO_MIN_STEPS = 50
AUTO_MAX_SAMPLES = 20_000
AUTO_EVALUATIONS = 10  # evaluations over a sized run (test_every follows its length)
# Below these counts a run's numbers mean little: the UI, the run log and the model card
# warn, and the bucket calibration is not fitted on fewer held-out pairs.
MIN_TRAIN_PAIRS = 100
MIN_TEST_PAIRS = 30


class ConfigError(ValueError):
    """A setting that cannot work; the message names the field and what to do."""


def _f(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything one fine-tuning run needs; sizes are counted in pairs (samples)."""

    data: str = _f(
        "",
        "training data: a JoyQuality JSON file, a published dataset (local Parquet folder "
        "or Hub dataset id), or a ranking project name (with data_kind=project)",
    )
    data_kind: str = _f(
        "auto", "how to read `data`; auto picks json for *.json, else dataset", DATA_KINDS
    )
    output_dir: str = _f("runs/joyquality-finetune", "run folder: checkpoints, logs, final model")
    base_model: str = _f(DEFAULT_MODEL_ID, "JoyQuality or any SigLIP checkpoint (Hub id or folder)")
    preset: str = _f("", "preset the settings started from (recorded for the model card)")
    train_mode: str = _f(
        "head", "head: train the linear head only; full: the whole model", TRAIN_MODES
    )
    gradient_checkpointing: bool = _f(True, "recompute activations in full mode to save memory")
    learning_rate: float = _f(8e-5, "peak AdamW learning rate")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    adam_beta1: float = _f(0.9, "AdamW beta1")
    adam_beta2: float = _f(0.999, "AdamW beta2")
    adam_eps: float = _f(1e-8, "AdamW epsilon")
    lr_scheduler: str = _f("cosine", "learning-rate schedule", SCHEDULERS)
    warmup_samples: int = _f(0, "pairs of linear (cosine/linear) or cosine (onecycle) warmup")
    batch_size: int = _f(256, "pairs per optimizer step (reached by gradient accumulation)")
    device_batch_size: int = _f(4, "pairs per forward on each device; lower it to save memory")
    total_samples: int = _f(
        0,
        "pairs seen in the whole run (repeats the data as needed); 0: sized to the data "
        f"({AUTO_EPOCHS} passes over the training pairs, at least {AUTO_MIN_STEPS} steps, "
        f"at most {AUTO_MAX_SAMPLES} pairs), with the batch capped at the training pairs",
    )
    max_grad_norm: float = _f(1.0, "gradient clipping norm (0 turns clipping off)")
    mixed_precision: str = _f("auto", "auto: bf16 on a GPU that has it, else fp32", PRECISIONS)
    test_every: int = _f(2_000, "evaluate every this many pairs (0: only at the start and end)")
    eval_at_start: bool = _f(True, "evaluate the base model before the first step")
    checkpoint_every: int = _f(5_000, "save a resumable checkpoint every this many pairs (0: off)")
    keep_checkpoints: int = _f(2, "how many resumable checkpoints to keep")
    resume: bool = _f(True, "continue from the newest checkpoint in output_dir if there is one")
    seed: int = _f(0, "seed for pair order, robustness corruptions and initialisation")
    num_workers: int = _f(4, "image-decoding worker processes per device (0: in the main process)")
    studio_db: str = _f("", "ranking database of project sources (default: the app's studio.db)")
    data_roots: str = _f(
        "", "folders (os.pathsep-separated) image paths inside the data may name; "
        "empty: any path (the app sets its readable folders)",
    )  # fmt: skip
    test_fraction: float = _f(0.1, "share of images held out for testing (ranking projects)")
    rank_by: str = _f("mu", "human ranking used for Spearman/Kendall", RANK_BY)
    robustness_images: int = _f(128, "test images used for the JPEG/low-res checks (0: off)")
    calibration_buckets: int = _f(
        5, "K of the tau/b bucket calibration fitted on the test split (5: named levels)"
    )
    report_to: str = _f("tensorboard", "accelerate trackers: comma list, 'all' or 'none'")
    push_to_hub: str = _f("", "Hub model repo to upload the final model to (empty: do not push)")
    hub_private: bool = _f(True, "create the Hub repo as private")
    cpu: bool = _f(False, "train on the CPU even when a GPU is present")
    cpu_threads: int = _f(0, "torch CPU threads (0: torch's default; 1 is fastest for tiny models)")
    cache_embeddings: bool = _f(
        True, "head mode: train on pooled embeddings computed once per image (same result)"
    )
    embedding_dir: str = _f(
        "", "where cached embeddings live (empty: $STUDIO_DATA_DIR/embeddings or ~/.cache)"
    )

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` for settings that cannot work; returns self."""
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{f.name}={getattr(self, f.name)!r}: choose one of {choices}")
        if not self.data:
            raise ConfigError("data is empty: give a JSON file, a dataset or a project name")
        positive = ("batch_size", "device_batch_size", "calibration_buckets")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        nonneg = (
            "total_samples",
            "warmup_samples",
            "test_every",
            "checkpoint_every",
            "robustness_images",
            "cpu_threads",
        )
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.batch_size % self.device_batch_size:
            raise ConfigError(
                f"batch_size {self.batch_size} is not a multiple of device_batch_size "
                f"{self.device_batch_size}: pick sizes that divide"
            )
        if 0 < self.total_samples < self.batch_size:
            raise ConfigError(
                f"total_samples {self.total_samples} is less than one batch ({self.batch_size})"
            )
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.keep_checkpoints < 1:
            raise ConfigError("keep_checkpoints must be at least 1")
        return self

    @property
    def sized_to_data(self) -> bool:
        """Whether the run's length is still to be set from its data (total_samples=0)."""
        return self.total_samples == 0

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the run (the remainder of total_samples is dropped)."""
        return self.total_samples // self.batch_size

    def sized_to(self, train_pairs: int, processes: int = 1) -> TrainConfig:
        """This config with its length set from ``train_pairs`` (unchanged when given).

        The batch is capped at the training pairs (a batch of 256 over 37 pairs would
        only repeat each pair 7 times), the run lasts AUTO_EPOCHS passes within
        [AUTO_MIN_STEPS steps, AUTO_MAX_SAMPLES], warmup is at most a tenth of it and
        it is evaluated AUTO_EVALUATIONS times.

        >>> c = TrainConfig(data="x", batch_size=256, device_batch_size=4).sized_to(37)
        >>> c.batch_size, c.total_samples, c.total_steps, c.test_every
        (36, 1800, 50, 180)
        """
        if not self.sized_to_data:
            return self
        per_step = self.device_batch_size * processes
        batch = min(self.batch_size, max(per_step, train_pairs // per_step * per_step))
        steps = max(AUTO_MIN_STEPS, -(-AUTO_EPOCHS * train_pairs // batch))
        steps = max(1, min(steps, AUTO_MAX_SAMPLES // batch))
        total = steps * batch
        every = max(batch, total // AUTO_EVALUATIONS // batch * batch)
        return dataclasses.replace(
            self,
            batch_size=batch,
            total_samples=total,
            warmup_samples=min(self.warmup_samples, total // 10),
            test_every=every if self.test_every else 0,
        )

    @property
    def warmup_steps(self) -> int:
        return min(self.total_steps, round(self.warmup_samples / self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown settings {unknown}; known ones: {sorted(known)}")
        return cls(**values)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_FILE
        return cls.from_dict(json.loads(path.read_text()))


# Upstream's experience (docs/joyquality.md): a personal set of a few thousand pairs learns
# and overfits quickly; head-only onecycle at a high rate works best. The full recipe is
# the base run's (lr 2e-5, cosine, warmup), shortened to a personal-sized budget.
PRESETS: dict[str, dict[str, Any]] = {
    "personal": dict(
        train_mode="head",
        lr_scheduler="onecycle",
        learning_rate=0.008,
        warmup_samples=1_500,
        batch_size=256,
        total_samples=0,
    ),
    "full": dict(
        train_mode="full",
        gradient_checkpointing=True,
        lr_scheduler="cosine",
        learning_rate=2e-5,
        warmup_samples=2_000,
        batch_size=256,
        total_samples=0,
    ),
}
PRESET_LABELS = {
    "personal": "personal fine-tune (head only, onecycle, lr 0.008)",
    "full": "full fine-tune (lr 2e-5, cosine, warmup)",
}


def apply_preset(config: TrainConfig, name: str) -> TrainConfig:
    """Return a copy of ``config`` with the preset's settings (and its name) applied."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(config, preset=name, **PRESETS[name])
