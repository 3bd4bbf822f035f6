"""The Scoring tab's models: which are offered, and loading one (kept until another is asked).

Offered: JoyQuality, the demo model (built here in seconds), every finished training
run, every project's exported online head (``head: <project>``) and the owner's list (``STUDIO_SCORING_MODELS``); :func:`check_source` refuses
anything else, so a visitor cannot make the server download an arbitrary Hub repo or
read a folder elsewhere. One model is held at a time (the real one is 1.7 GB). Model
code is imported inside the functions (``import app`` must not import torch).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import gradio as gr

from common.contracts import DEFAULT_MODEL_ID
from common.paths import PathRefused, gate
from ui.context import StudioContext

_models: dict[str, object] = {}
_lock = threading.Lock()


def gpu(fn):
    """``spaces.GPU`` on a ZeroGPU Space; the function itself everywhere else."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)


def models_dir(ctx: StudioContext) -> Path:
    return Path(ctx.data_dir) / "models"


RUN_PREFIX = "run: "  # a finished training run, offered by name: "run: <run name>"


def _runs(ctx: StudioContext) -> dict[str, Path]:
    """Public name -> folder of every finished training run (``runs/<run>/final``)."""
    from model.named import finished_runs

    return finished_runs(ctx.runs_dir)


def heads(ctx: StudioContext) -> dict[str, Path]:
    """Public name -> folder of every exported online head (``head: <project>``)."""
    from model.named import exported_heads

    return exported_heads(models_dir(ctx))


def forget(folder: str | Path) -> None:
    """Drop a held model loaded from ``folder`` (its files were just replaced)."""
    with _lock:
        _models.pop(str(Path(folder).resolve()), None)


def model_choices(ctx: StudioContext) -> list[tuple[str, str]]:
    """JoyQuality, the demo model, every finished training run, every exported online
    head and the owner's list, as (label, value). Values are names, never server folders: a page or an API answer
    shows no path (:func:`check_source` maps a name to what is loaded)."""
    from model.demo_model import DEMO_MODEL_LABEL, DEMO_MODEL_NAME

    extra = [m.strip() for m in os.environ.get("STUDIO_SCORING_MODELS", "").split(",")]
    return (
        [
            (f"JoyQuality ({DEFAULT_MODEL_ID})", DEFAULT_MODEL_ID),
            (DEMO_MODEL_LABEL, DEMO_MODEL_NAME),
        ]
        + [(name, name) for name in _runs(ctx)]
        + [(name, name) for name in heads(ctx)]
        + [(m, m) for m in extra if m and m != DEFAULT_MODEL_ID]
    )


def default_model(ctx: StudioContext) -> tuple[str, str]:
    """The preselected model and why: JoyQuality when on this machine, else the demo model."""
    from model.demo_model import default_model_choice

    return default_model_choice(models_dir(ctx), DEFAULT_MODEL_ID)


def check_source(ctx: StudioContext, source: str) -> str:
    """Only the default model, this server's finished runs and the owner's list
    (``STUDIO_SCORING_MODELS``, comma-separated) are loaded: a visitor cannot make the
    server download an arbitrary Hub repo or read a folder elsewhere."""
    from model.demo_model import DEMO_MODEL_NAME, demo_model_dir, ensure_demo_model

    if source is not None and not isinstance(source, str):
        raise gr.Error("the model must be given as text (a name from /scoring_models)")
    source = (source or DEFAULT_MODEL_ID).strip()
    demo = demo_model_dir(models_dir(ctx))
    if source == DEMO_MODEL_NAME or Path(source).expanduser() in (demo, demo.resolve()):
        ensure_demo_model(models_dir(ctx))  # built here in seconds, once
        return str(demo.resolve())
    runs, exported = _runs(ctx), heads(ctx)
    if source in runs:
        return str(runs[source])
    if source in exported:
        return str(exported[source])
    if source in [value for _, value in model_choices(ctx)]:
        return source
    try:  # a run folder named by its path (the owner's scripts) is still a run
        real = gate(source, [ctx.runs_dir], owner=False, kind="dir", base=ctx.runs_dir)
    except PathRefused:
        real = None
    if real is not None and real in runs.values():
        return str(real)
    raise gr.Error(
        f"model {source[:200]!r} is not offered here; use one of /scoring_models "
        "(the owner can add more with STUDIO_SCORING_MODELS)"
    )


def get_model(ctx: StudioContext, source: str):
    """The model for ``source``, loaded once; a clear error when it is unavailable."""
    from model.joyquality import ModelUnavailableError, NotSiglipCheckpointError, load_model

    source = check_source(ctx, source)
    with _lock:
        if source not in _models:
            try:
                model = load_model(source)
            except (ModelUnavailableError, NotSiglipCheckpointError) as exc:
                raise gr.Error(str(exc)) from None
            _models.clear()
            _models[source] = model
        return _models[source]
