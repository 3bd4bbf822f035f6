"""The app's model names and the folders behind them, under one data folder.

Forms and the API offer models by name, never by server folder: JoyQuality's Hub id,
the demo model (``demo-quality``, built on first use), a finished training run
(``run: <run name>`` = ``<data dir>/runs/<run>/final``) and a project's exported online
head (``head: <project name>`` = ``<data dir>/models/heads/project-<id>``, see
:mod:`model.head_export`). The Scoring tab decides which names a visitor may use;
this module only maps a name to what :func:`model.joyquality.load_model` reads, so
the app and the command line (new images of a project with a model attached) agree.

Nothing heavy is imported here.
"""

from __future__ import annotations

import json
from pathlib import Path

RUN_PREFIX = "run: "
HEAD_PREFIX = "head: "
MODELS_DIRNAME = "models"
RUNS_DIRNAME = "runs"
HEADS_DIRNAME = "heads"
HEAD_INFO = "head.json"  # beside an exported head: project, votes, base model


def finished_runs(runs_dir: str | Path) -> dict[str, Path]:
    """``run: <name>`` -> final folder of every finished training run."""
    runs = sorted(p for p in Path(runs_dir).glob("*/final") if (p / "config.json").is_file())
    return {f"{RUN_PREFIX}{p.parent.name}": p.resolve() for p in runs}


def exported_heads(models_dir: str | Path) -> dict[str, Path]:
    """``head: <project>`` -> folder of every exported online head (the newest export
    wins when a deleted project's name was reused)."""
    found: list[tuple[float, str, Path]] = []
    for info in Path(models_dir, HEADS_DIRNAME).glob(f"*/{HEAD_INFO}"):
        folder = info.parent
        if not (folder / "config.json").is_file():
            continue
        try:
            project = str(json.loads(info.read_text(encoding="utf-8"))["project"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append((info.stat().st_mtime, project, folder.resolve()))
    return {f"{HEAD_PREFIX}{name}": folder for _, name, folder in sorted(found)}


def local_model(name: str, data_dir: str | Path) -> str:
    """What ``load_model`` should read for an app model name: the folder of the demo
    model (built here when missing), of a run or of an exported head; anything else
    (a Hub id, a folder) unchanged. ``ModelUnavailableError`` for a run or head that is
    not there."""
    from model.demo_model import DEMO_MODEL_NAME, ensure_demo_model

    data_dir = Path(data_dir)
    models = data_dir / MODELS_DIRNAME
    if name == DEMO_MODEL_NAME:
        return str(ensure_demo_model(models).resolve())
    found = None
    if name.startswith(RUN_PREFIX):
        found = finished_runs(data_dir / RUNS_DIRNAME).get(name)
    elif name.startswith(HEAD_PREFIX):
        found = exported_heads(models).get(name)
    else:
        return name
    if found is None:
        from model.checkpoint import ModelUnavailableError

        raise ModelUnavailableError(f"{name!r}: no such model under {data_dir}")
    return str(found)
