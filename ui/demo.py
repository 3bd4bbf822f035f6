"""The demo project: generated pictures with graded damage, so the true order is known.

Three procedurally drawn scenes (no downloads, nothing in git), each saved clean and
with blur, noise, JPEG and low-resolution damage at a mild and a strong level:
27 images whose quality order is known (clean > mild > strong). A newcomer can
rank them and watch the leaderboard converge; the progress line shows Kendall's tau
between the current ranking and that order. File names do not give the answer away.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from common.demo_pictures import DAMAGE, SCENES, damage, draw_scene
from common.maths import kendall_tau
from ui.context import StudioContext

DEMO_PROJECT = "Demo: image quality"
DEMO_INSTRUCTION = "Which image has better overall quality?"
TRUTH_FILE = "truth.json"
log = logging.getLogger(__name__)


def demo_dir(ctx: StudioContext) -> Path:
    return Path(ctx.data_dir) / "demo"


def ensure_demo_project(ctx: StudioContext) -> None:
    """Create the demo images and project if missing; never stops the app from starting."""
    try:
        folder = write_demo_images(demo_dir(ctx))
        studio = ctx.studio
        if any(p.name == DEMO_PROJECT for p in studio.list_projects()):
            return
        project = studio.create_project(DEMO_PROJECT, DEMO_INSTRUCTION)
        report = project.add_folder(folder / "images")
        log.info("demo project created: %s", report.summary())
    except Exception:  # the demo is a convenience: log it, keep the app up
        log.exception("could not create the demo project")


def write_demo_images(root: Path, seed: int = 7) -> Path:
    """Write the 27 demo images, their context and the known order under ``root``."""
    images = root / "images"
    if (root / TRUTH_FILE).exists() and len(list(images.glob("*.jpg"))) == len(SCENES) * len(
        DAMAGE
    ):
        return root
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(SCENES) * len(DAMAGE))  # shuffled numbering hides the answer
    truth, context = {}, {"default": "Demo image."}
    k = 0
    for s, scene in enumerate(SCENES):
        clean = draw_scene(s, rng)
        for kind, level, param in DAMAGE:
            name = f"demo-{order[k] + 1:02d}.jpg"
            damage(clean, kind, param, rng).save(images / name, "JPEG", quality=95)
            truth[name] = {"scene": scene, "damage": kind, "level": level}
            context[name] = f"<b>Scene:</b> {scene}. <i>Generated demo picture.</i>"
            k += 1
    (images / "context.json").write_text(json.dumps(context, indent=1))
    (root / TRUTH_FILE).write_text(json.dumps(truth, indent=1))
    return root


def known_levels(ctx: StudioContext) -> dict[str, int]:
    """File name -> damage level (0 best) of the demo images; empty if not generated."""
    path = demo_dir(ctx) / TRUTH_FILE
    if not path.exists():
        return {}
    return {name: v["level"] for name, v in json.loads(path.read_text()).items()}


def careful_answer(left: str, right: str, truth: dict[str, dict]) -> str:
    """How a careful labeler who sees the damage answers a demo pair (benchmarks, tests).

    The less damaged image wins. At equal levels nothing is known, and a person still
    picks one: this labeler prefers, in order, a clean, low-resolution, JPEG, noisy,
    then blurred picture, then the scene listed first; only copies of the same kind,
    level and scene would tie. (Answering every equal-level pair "tie" is not what
    people do, and an active pair selection then keeps re-asking the tied pair.)

    >>> t = {"a": {"level": 1, "damage": "blur", "scene": "s"},
    ...      "b": {"level": 1, "damage": "jpeg", "scene": "s"},
    ...      "c": {"level": 0, "damage": "clean", "scene": "s"}}
    >>> careful_answer("a", "b", t), careful_answer("a", "c", t), careful_answer("c", "b", t)
    ('right', 'right', 'left')
    """
    taste = ("clean", "lowres", "jpeg", "noise", "blur")

    def rank(name: str) -> tuple:
        v = truth[name]
        return v["level"], taste.index(v["damage"]), v["scene"]

    a, b = rank(left), rank(right)
    return "left" if a < b else "right" if b < a else "tie"


def known_truth(ctx: StudioContext) -> dict[str, dict]:
    """File name -> {"scene", "damage", "level"} of the demo images; empty if not generated."""
    path = demo_dir(ctx) / TRUTH_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def kendall_tau_vs_truth(ranked_names: list[str], levels: dict[str, int]) -> float | None:
    """Kendall's tau-b between a ranking (best first) and the known levels (ties allowed)."""
    x = [levels[n] for n in ranked_names if n in levels]
    if len(x) < 3:
        return None
    # Position 0 is the best and level 0 the least damaged: the same direction.
    tau = kendall_tau(np.arange(len(x)), x)
    return None if np.isnan(tau) else tau


def pair_accuracy_vs_truth(scores: dict[str, float], levels: dict[str, int]) -> tuple[float, int]:
    """Share of the pairs of demo images at different damage levels that ``scores`` (file
    name -> model score, higher better) order like the known levels, and how many pairs.

    Pairs at the same level have no known order and are left out; an exact score tie
    earns half (the rule of :func:`common.maths.pair_accuracy`).

    >>> pair_accuracy_vs_truth({"a": 2.0, "b": 1.0, "c": 0.5}, {"a": 0, "b": 1, "c": 1})
    (1.0, 2)
    """
    from common.maths import pair_accuracy

    names = sorted(n for n in scores if n in levels)
    margins = [
        scores[a] - scores[b] if levels[a] < levels[b] else scores[b] - scores[a]
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if levels[a] != levels[b]
    ]
    return pair_accuracy(margins), len(margins)
