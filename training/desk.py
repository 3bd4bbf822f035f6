"""What the Training tab and its API do, as plain functions (no gradio, no torch).

:class:`TrainingDesk` turns form values into a checked :class:`TrainConfig`, starts it
through the one :class:`RunManager` of the app's runs folder, and shapes a run's files
into what the page shows: a status line, loss/accuracy curves, the metric table and
the log. Local paths are only accepted inside the folders the server may read.

Example::

    desk = TrainingDesk(runs_dir, studio_db, readable_roots=[Path.home()])
    run = desk.start({"source": "json", "data": "~/pairs.json", "preset": "personal"})
    desk.poll(run)["state"]
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from pathlib import Path
from typing import Any, get_type_hints

from common.paths import PathRefused, gate
from ranker.contracts import DEFAULT_MODEL_ID
from training.config import PRESETS, ConfigError, TrainConfig, apply_preset
from training.worker import RunManager

SOURCES = ("project", "dataset", "json")
# Form fields a user may set, with the type each is read as.
FORM_FIELDS = {
    "learning_rate": float,
    "lr_scheduler": str,
    "train_mode": str,
    "batch_size": int,
    "device_batch_size": int,
    "total_samples": int,
    "warmup_samples": int,
    "test_every": int,
    "seed": int,
    "push_to_hub": str,
}
# Form keys that are not settings, or settings the server decides (paths, resume).
NOT_SETTINGS = {"source", "data", "base_model", "preset", "data_kind", "output_dir",
                "studio_db", "resume", "cpu"}  # fmt: skip
SETTING_TYPES = get_type_hints(TrainConfig)
MAX_CURVE_POINTS = 600
METRIC_ORDER = ("accuracy", "nll", "brier", "ece", "aurc", "spearman", "kendall",
                "jpeg_accuracy", "lowres_accuracy")  # fmt: skip
ZERO_GPU_NOTE = (
    "This Space runs on ZeroGPU, which lends a GPU to one function call for a few minutes "
    "at a time: fine-tuning needs a dedicated GPU. Duplicate the Space on L4 or A10G "
    "hardware (24 GB is enough for a full fine-tune), or train locally with "
    "`pstudio-train` and upload the model."
)

_managers: dict[Path, RunManager] = {}
_managers_lock = threading.Lock()


def manager_for(runs_dir: Path) -> RunManager:
    """One manager per runs folder in this process, so its child processes are tracked."""
    key = Path(runs_dir).resolve()
    with _managers_lock:
        if key not in _managers:
            _managers[key] = RunManager(key)
        return _managers[key]


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def preset_values(name: str) -> dict[str, Any]:
    """The form values of a preset (defaults for the fields it does not set)."""
    base = TrainConfig()
    if name in PRESETS:
        base = apply_preset(base, name)
    return {k: getattr(base, k) for k in FORM_FIELDS}


def thin(rows: list, limit: int) -> list:
    """At most ``limit`` evenly spaced rows, always keeping the last (for live plots)."""
    if len(rows) <= limit:
        return rows
    stride = -(-len(rows) // limit)
    kept = rows[::stride]
    return kept if kept[-1] is rows[-1] else [*kept, rows[-1]]


def _convert(kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return bool(raw)
    if kind is int and isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    value = kind(raw)
    numeric = isinstance(value, float | int) and not isinstance(value, bool)
    if numeric and (not math.isfinite(value) or abs(value) > MAX_SETTING):
        raise ValueError(raw)  # NaN, inf, 1e308 ("nan" as text too): refused at the boundary
    return value


MAX_SETTING = 1e12  # no training setting is sensibly larger; bigger values are typos or attacks


class TrainingDesk:
    """Start, watch and stop runs for one app (one run at a time)."""

    def __init__(self, runs_dir: Path, studio_db: Path, readable_roots: list[Path]) -> None:
        self.runs_dir = Path(runs_dir)
        self.studio_db = Path(studio_db)
        self.roots = [Path(r).resolve() for r in readable_roots]
        self.manager = manager_for(self.runs_dir)

    def _local(self, value: str, what: str) -> str:
        """A local path inside the readable folders, or ConfigError."""
        try:
            return str(gate(value, self.roots, base=Path.cwd()))
        except PathRefused as exc:
            raise ConfigError(f"{what}: {exc}") from None

    def _looks_local(self, value: str) -> bool:
        return value.startswith(("/", "~", ".")) or Path(value).expanduser().exists()

    def build_config(self, form: dict[str, Any]) -> TrainConfig:
        """A checked config from form/API values (blank values keep the preset's)."""
        source = form.get("source") or "json"
        if source not in SOURCES:
            raise ConfigError(f"source must be one of {SOURCES}, not {source!r}")
        data = str(form.get("data") or "").strip()
        if not data:
            raise ConfigError("choose the training data first")
        if source == "json" or (source == "dataset" and self._looks_local(data)):
            data = self._local(data, "the data")
        base = str(form.get("base_model") or DEFAULT_MODEL_ID).strip()
        if self._looks_local(base):
            base = self._local(base, "the base model")
        preset = form.get("preset") or ""
        config = TrainConfig(data=data, base_model=base, studio_db=str(self.studio_db))
        if preset in PRESETS:
            config = apply_preset(config, preset)
        values: dict[str, Any] = {}
        for name, raw in form.items():
            if name in NOT_SETTINGS or raw is None or raw == "":
                continue
            kind = SETTING_TYPES.get(name)
            if kind is None:
                raise ConfigError(f"unknown setting {name!r}")
            try:
                values[name] = _convert(kind, raw)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{name}: {raw!r} is not a valid {kind.__name__} (finite, at most 1e12)"
                ) from None
        kind = {"project": "project", "dataset": "dataset", "json": "json"}[source]
        config = dataclasses.replace(config, data_kind=kind, **values)
        return config.validate()

    def start(self, form: dict[str, Any], run_name: str | None = None) -> str:
        if on_zero_gpu():
            raise ConfigError(ZERO_GPU_NOTE)
        return self.manager.start(self.build_config(form), run_name or None)

    def stop(self, force: bool = False) -> bool:
        return self.manager.stop(force=force)

    def poll(self, run: str | None = None) -> dict[str, Any]:
        """A run's state for viewers: status, progress, curves, evaluations, log tail."""
        snap = self.manager.snapshot(run or None)
        if not snap:
            return {"run": None, "state": "idle", "message": "no run yet", "progress": 0.0,
                    "train": [], "eval": [], "log": "", "active": False, "data": {}}  # fmt: skip
        status = snap["status"]
        total = status.get("total_steps") or 0
        step = status.get("step") or 0
        return {
            "run": snap["run"],
            "active": snap["active"],
            "state": status.get("state", "unknown"),
            "message": status.get("message", ""),
            "error": status.get("error"),
            "step": step,
            "total_steps": total,
            "progress": round(step / total, 4) if total else 0.0,
            "final_dir": status.get("final_dir"),
            "data": snap["data"],
            "train": [
                {k: e[k] for k in ("step", "samples", "loss", "accuracy", "lr")}
                for e in thin(snap["train"], MAX_CURVE_POINTS)
            ],
            "eval": [
                {
                    "step": e["step"],
                    "samples": e["samples"],
                    **{k: e[k] for k in METRIC_ORDER if k in e},
                }
                for e in snap["eval"]
            ],  # fmt: skip
            "log": snap["log"],
        }
