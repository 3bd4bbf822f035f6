"""Model in the loop on real pixels: generated pictures with known grades, the demo model.

``bench/loop_bench.py`` measures a simulated world; this checks the same selector on
pixels that went through a real backbone. A project of N pictures is drawn with the
demo's generator (``common/demo_pictures.py``, seeds the demo model never saw), each
damaged by one of its four kinds (blur, noise, JPEG, low resolution) at a continuous
severity ``g`` in [0, 1] (0: clean; 1: the demo's strong level): the known grade, and
the hidden quality is ``-g``. The demo model (``model/demo_model.py``, trained here in
seconds) is the base head; its pooled embeddings (``model/embeddings.py``) the features.
Simulated Thurstone labelers follow the grades (90% agreement on random pairs). Reported:
votes per image to Kendall tau 0.8 / 0.9 for ``active`` alone, ``active`` with static
pre-ranking by the demo model, and ``model_loop``, each labeling seed on the same project.

Usage:
    python bench/pixel_loop_bench.py --n 300 --seeds 3
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.special import ndtr  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loop_bench import LABELERS, _pool_map, report, run  # noqa: E402
from rank_bench import noise_scale  # noqa: E402

from common.demo_pictures import SCENES, damage, draw_scene  # noqa: E402

# each kind from clean (g = 0) to the demo's strong level (g = 1)
KINDS = {
    "blur": lambda g: 4.0 * g,
    "noise": lambda g: 40.0 * g,
    "jpeg": lambda g: int(round(95 - 89 * g)),
    "lowres": lambda g: 1.0 - 0.82 * g,
}
PROJECT_SEED = 2000  # the demo project draws with 7, the demo model trains on 1000+
_PROJECT: tuple = ()  # (q, embeddings, base scores), set before the workers fork


def _job(job: dict) -> dict:
    return run(job, *_PROJECT)


def make_project(n: int) -> tuple[list[bytes], np.ndarray]:
    """``n`` PNG pictures and their grades ``g`` (0 clean .. 1 strongly damaged)."""
    pictures, grades = [], []
    for i in range(n):
        rng = np.random.default_rng([PROJECT_SEED, i])
        img = draw_scene(i % len(SCENES), rng)
        kind = list(KINDS)[rng.integers(len(KINDS))]
        g = float(rng.random())
        param = KINDS[kind](g)
        if not (kind == "lowres" and param >= 0.999):
            img = damage(img, kind, param, rng)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        pictures.append(buf.getvalue())
        grades.append(g)
    return pictures, np.array(grades)


def demo_features(pictures: list[bytes]) -> tuple[np.ndarray, np.ndarray, dict]:
    """The demo model's pooled embeddings and scores of the pictures."""
    import torch

    from model.demo_model import train_demo_model
    from model.embeddings import embed_images

    torch.set_num_threads(1)
    model, info = train_demo_model()
    with torch.no_grad():
        emb = embed_images(model, pictures, batch_size=32)
        scores = model.head(emb)
    return emb.numpy(), scores.numpy().astype(np.float64), info


def agreement(scores: np.ndarray, q: np.ndarray, scale: float) -> tuple[float, float]:
    """Share of the labelers' votes on random pairs a head orders alike, and of the truth."""
    i, j = np.triu_indices(len(q), 1)
    p_i = ndtr((q[i] - q[j]) / scale) if scale else (q[i] > q[j]).astype(float)
    ahead = scores[i] > scores[j]
    return float(np.mean(np.where(ahead, p_i, 1 - p_i))), float(np.mean(ahead == (q[i] > q[j])))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3, help="labeling seeds, one project")
    parser.add_argument("--max-budget", type=float, default=8.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=["active", "active+prior", "model_loop"])
    parser.add_argument(
        "--cache", help="keep the project's grades, embeddings and scores here (.npz)"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.cache and os.path.exists(args.cache):
        saved = np.load(args.cache)
        grades, emb, base, info = saved["grades"], saved["emb"], saved["base"], "cached"
    else:
        pictures, grades = make_project(args.n)
        emb, base, info = demo_features(pictures)
        if args.cache:
            np.savez(args.cache, grades=grades, emb=emb, base=base)
    q = -grades
    q = (q - q.mean()) / q.std()
    scale = noise_scale(LABELERS["90%"], "thurstone")
    votes, truth = agreement(base, q, scale)
    x = np.column_stack([emb, np.ones(len(q))])
    best = x @ np.linalg.lstsq(x, q, rcond=None)[0]  # in-sample: an upper bound
    best_votes, best_truth = agreement(best, q, scale)
    print(
        f"{len(q)} pictures, demo model {info}, embeddings {emb.shape[1]}-d; base head agrees "
        f"{votes:.1%} with 90% labelers' votes ({truth:.1%} with the grades), the best "
        f"linear head on the embeddings {best_votes:.1%} ({best_truth:.1%}) "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    jobs = [
        {"n": args.n, "seed": seed, "strategy": s, "labelers": "90%", "world": "pixels",
         "d": emb.shape[1], "max_budget": args.max_budget, "stop_own": 2.0}
        for seed in range(args.seeds) for s in args.strategies
    ]  # fmt: skip
    global _PROJECT
    _PROJECT = (q, emb, base)
    results = _pool_map(_job, jobs, args.jobs)
    rows = report(results)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return rows


if __name__ == "__main__":
    main()
