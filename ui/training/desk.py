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
import re
import threading
import time
from pathlib import Path
from typing import Any, get_type_hints

from common.contracts import DEFAULT_MODEL_ID
from common.paths import PathRefused, gate
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
                "studio_db", "data_roots", "resume", "cpu"}  # fmt: skip
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


_PROGRESS = re.compile(r"\d+%\|.*\||\d+(\.\d+)?\s*(it|examples|ba)/s\]")


def clean_log(text: str) -> str:
    """The log without progress bars: a bar redraws itself with ``\\r``; only the last
    state of a line is kept, and lines that are only a bar are dropped.

    >>> clean_log("a\\n 10%|#  | 1/10\\r100%|##| 10/10 [00:01, 9.1it/s]\\nb\\n")
    'a\\nb\\n'
    """
    kept = []
    for line in text.splitlines(keepends=True):
        last = line.rstrip("\n").split("\r")[-1]
        if not _PROGRESS.search(last):
            kept.append(last + ("\n" if line.endswith("\n") else ""))
    return "".join(kept)


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

    def __init__(
        self,
        runs_dir: Path,
        studio_db: Path,
        readable_roots: list[Path],
        models_dir: Path | None = None,
        embedding_dir: Path | None = None,
    ) -> None:
        self.runs_dir = Path(runs_dir)
        self.studio_db = Path(studio_db)
        self.models_dir = Path(models_dir) if models_dir else self.runs_dir.parent / "models"
        self.embedding_dir = embedding_dir
        self.roots = [Path(r).resolve() for r in [*readable_roots, self.models_dir]]
        self.manager = manager_for(self.runs_dir)

    def default_base_model(self) -> tuple[str, str]:
        """The base model the form preselects and why (see ``model.demo_model``)."""
        from model.demo_model import default_model_choice

        return default_model_choice(self.models_dir, DEFAULT_MODEL_ID)

    def _local(self, value: str, what: str) -> str:
        """A local path inside the readable folders, or ConfigError naming them.

        Only the owner can start runs, so naming the server's folders here tells
        nobody else anything.
        """
        try:
            return str(gate(value, self.roots, base=Path.cwd()))
        except PathRefused as exc:
            raise ConfigError(
                f"{what}: {exc}; move it into one of them, or add its folder to BASE_DIR"
            ) from None

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
        base = self._named_head(str(form.get("base_model") or DEFAULT_MODEL_ID).strip())
        if self._build_demo_if_picked(base):  # by name: the folder it was built in
            from model.demo_model import demo_model_dir

            base = str(demo_model_dir(self.models_dir).resolve())
        if self._looks_local(base):
            self._build_demo_if_picked(base)  # built on first use, so it exists to be gated
            base = self._local(base, "the base model")
        preset = form.get("preset") or ""
        # Image paths inside the data (JSON or Parquet cells) are gated like the data itself.
        roots = os.pathsep.join(str(r) for r in self.roots)
        config = TrainConfig(
            data=data, base_model=base, studio_db=str(self.studio_db), data_roots=roots
        )
        if self.embedding_dir is not None:
            config = dataclasses.replace(config, embedding_dir=str(self.embedding_dir))
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

    def start(
        self, form: dict[str, Any], run_name: str | None = None, wait_seconds: float = 0.0
    ) -> str:
        """Start a run; with ``wait_seconds``, watch it that long and raise ConfigError
        with its message if it fails while reading its data and model (so a page shows
        a bad start as an error, not as "Started")."""
        if on_zero_gpu():
            raise ConfigError(ZERO_GPU_NOTE)
        config = self.build_config(form)
        self._check_base_model(config.base_model)
        run = self.manager.start(config, run_name or None)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            status = self.manager.files(run).read_status()
            if status.get("state") == "failed" or (
                self.manager.active() != run and status.get("state") in ("queued", "loading")
            ):
                status = self.manager.files(run).read_status()  # active() marks a dead one
                raise ConfigError(f"run {run} failed: {status.get('message') or 'see its log'}")
            if status.get("state") not in ("queued", "loading"):
                break
            time.sleep(0.2)
        return run

    def _named_head(self, base: str) -> str:
        """A project's exported online head (``head: <project>``) by its folder; other
        names unchanged."""
        from model.named import HEAD_PREFIX, exported_heads

        if not base.startswith(HEAD_PREFIX):
            return base
        folder = exported_heads(self.models_dir).get(base)
        if folder is None:
            raise ConfigError(
                f"no exported head named {base!r}: export it from the project's "
                "Model in the loop panel first"
            )
        return str(folder)

    def _build_demo_if_picked(self, base: str) -> bool:
        """Build the demo model (seconds, once) when ``base`` names it (by its name or
        folder); True if it does."""
        from model.demo_model import DEMO_MODEL_NAME, demo_model_dir, ensure_demo_model

        demo = demo_model_dir(self.models_dir)
        if base != DEMO_MODEL_NAME and Path(base).expanduser() not in (demo, demo.resolve()):
            return False
        ensure_demo_model(self.models_dir)
        return True

    def _check_base_model(self, base: str) -> None:
        """Build the demo model when it is picked; refuse a Hub model offline and uncached."""
        from model.demo_model import hub_model_cached

        if self._build_demo_if_picked(base):
            return
        if Path(base).exists() or hub_model_cached(base):
            return
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise ConfigError(
                f"the base model {base} is not on this machine and offline mode is on "
                "(HF_HUB_OFFLINE): pick the demo quality model, a finished run's final "
                "folder, or download the model first"
            )

    def active_settings(self) -> dict[str, Any] | None:
        """The form values of the active run (a refreshed page shows what is running)."""
        run = self.manager.active()
        if run is None:
            return None
        try:
            config = TrainConfig.load(self.manager.files(run).root)
        except (OSError, ValueError):
            return None
        values = {k: getattr(config, k) for k in FORM_FIELDS}
        source = {"project": "project", "dataset": "dataset", "json": "json"}.get(config.data_kind)
        values.update(source=source or "json", data=config.data, base_model=config.base_model,
                      preset=config.preset or "custom", run=run)  # fmt: skip
        return values

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
            "warnings": status.get("warnings") or [],
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
            "log": clean_log(snap["log"]),
        }
