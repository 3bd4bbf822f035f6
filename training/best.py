"""The best evaluation's weights on disk, so a resumed run still keeps the best by test loss.

The loop remembers the trained weights of the evaluation with the lowest test loss
and restores them before saving the final model. Held only in memory, they died with
a stopped or crashed run: a resumed run could then only choose among the evaluations
after the resume. They are written to ``<run>/best/`` whenever a resumable checkpoint
is saved (not at every improvement: a full fine-tune's weights are large), so the
newest checkpoint and ``best/`` always agree; a resume reads them back.

Files: ``weights.safetensors`` (the trained parameters only: the head in head mode),
``test_scores.npy`` (the evaluation's test scores, for the calibration) and
``best.json`` (the evaluation's record). Written into a temporary folder and renamed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

BEST_DIR = "best"
WEIGHTS = "weights.safetensors"
SCORES = "test_scores.npy"
RECORD = "best.json"


def best_dir(run_root: str | Path) -> Path:
    return Path(run_root) / BEST_DIR


def save_best(run_root: str | Path, best: dict[str, Any]) -> Path:
    """Write ``{"record", "state", "scores"}`` (the loop's best) to ``<run>/best``."""
    from safetensors.torch import save_file

    folder = best_dir(run_root)
    tmp = folder.with_name(f"{BEST_DIR}.tmp{time.time_ns()}")
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in best["state"].items()}, str(tmp / WEIGHTS))
    if best.get("scores") is not None:
        np.save(tmp / SCORES, np.asarray(best["scores"]))
    (tmp / RECORD).write_text(json.dumps(best["record"]))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder


def load_best(run_root: str | Path, up_to_step: int) -> dict[str, Any] | None:
    """The saved best, if there is one from an evaluation at or before ``up_to_step``."""
    from safetensors.torch import load_file

    folder = best_dir(run_root)
    try:
        record = json.loads((folder / RECORD).read_text())
        state = load_file(str(folder / WEIGHTS))
    except (OSError, ValueError):
        return None
    if record.get("step", up_to_step + 1) > up_to_step:
        return None
    scores = np.load(folder / SCORES) if (folder / SCORES).is_file() else None
    return {"record": record, "state": state, "scores": scores}


def clear_best(run_root: str | Path) -> None:
    shutil.rmtree(best_dir(run_root), ignore_errors=True)
