"""The whole loop on the demo, offline, as numbers: pair accuracy before and after tuning.

What a newcomer does in the app (README "The whole loop offline in five steps"), with
the same code paths minus the browser: the demo project and the demo quality model are
built in a fresh data folder; ``--votes`` pairs are asked from the project's own pair
selection and answered by a careful labeler who knows the demo's damage levels (the
less damaged image wins; at equal levels a fixed taste, ``ui.demo.careful_answer``); the Training tab's config (``personal``
preset, sized to the data, the project as the source) fine-tunes the demo model
in-process; both models then score the 27 demo images.

Printed: the pair accuracy of each model against the known order (pairs of images at
different damage levels; 50% is chance), the run's own held-out test accuracy, the
split, and the seconds each stage took. Seeded: the same command gives the same numbers.

    nice python bench/loop_demo.py            # 60 votes
    nice python bench/loop_demo.py --votes 120 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ui.context import StudioContext  # noqa: E402
from ui.demo import (  # noqa: E402
    DEMO_PROJECT,
    careful_answer,
    demo_dir,
    ensure_demo_project,
    known_levels,
    known_truth,
    pair_accuracy_vs_truth,
)

LABELER = "bench"


def truthful_votes(ctx: StudioContext, n: int) -> int:
    """Answer ``n`` pairs of the demo project as the known levels say; returns votes cast."""
    truth = known_truth(ctx)
    project = ctx.studio.project(DEMO_PROJECT)
    cast = 0
    for _ in range(n):
        pair = project.next_pair(LABELER)
        if pair is None:
            break
        outcome = careful_answer(pair.left.name, pair.right.name, truth)
        project.vote(pair.pair_id, outcome, LABELER)
        cast += 1
    return cast


def model_accuracy(ctx: StudioContext, folder: Path | str) -> tuple[float, int]:
    """The model's pair accuracy on the demo images against their known levels."""
    from model.joyquality import load_model
    from model.scoring import score_images

    model = load_model(str(folder), device="cpu")
    paths = sorted((demo_dir(ctx) / "images").glob("*.jpg"))
    rows = score_images(model, [str(p) for p in paths], batch_size=32, num_workers=0)
    scores = {Path(r["path"]).name: r["score"] for r in rows if r["error"] is None}
    return pair_accuracy_vs_truth(scores, known_levels(ctx))


def run(votes: int, data_dir: Path) -> dict:
    from training.desk import TrainingDesk

    from model.demo_model import ensure_demo_model
    from prefdata.tables import build_tables
    from training.loop import train

    began = time.perf_counter()
    ctx = StudioContext(data_dir=data_dir, admin_token=None, allowed_roots=[], on_space=False,
                        sound_enabled=False)  # fmt: skip
    ensure_demo_project(ctx)
    models = data_dir / "models"
    demo_model = ensure_demo_model(models)
    built = time.perf_counter()
    cast = truthful_votes(ctx, votes)
    voted = time.perf_counter()
    desk = TrainingDesk(ctx.runs_dir, ctx.db_path, [ctx.exports_dir, ctx.runs_dir],
                        models_dir=models, embedding_dir=data_dir / "embeddings")  # fmt: skip
    config = desk.build_config({"source": "project", "data": DEMO_PROJECT,
                                "base_model": str(demo_model), "preset": "personal",
                                "report_to": "none", "num_workers": 0})  # fmt: skip
    config = dataclasses.replace(config, output_dir=str(ctx.runs_dir / "loop-demo"))
    result = train(config, studio=ctx.studio)
    trained = time.perf_counter()
    before, pairs = model_accuracy(ctx, demo_model)
    after, _ = model_accuracy(ctx, result.final_dir)
    split = build_tables(ctx.studio.project(DEMO_PROJECT), config.test_fraction, config.seed).report
    return {
        "votes": cast,
        "demo_pairs_scored": pairs,
        "accuracy_untuned": round(before, 4),
        "accuracy_tuned": round(after, 4),
        "run_metrics": {k: round(v, 4) for k, v in result.metrics.items()},
        "best_step": result.best_step,
        "steps": result.steps,
        "split": {
            "test_share": split.test_fraction,
            "asked": config.test_fraction,
            "train_pairs": split.train_pairs,
            "test_pairs": split.test_pairs,
            "mixed_pairs": split.mixed_pairs,
        },  # fmt: skip
        "seconds": {
            "demo_model_build": round(built - began, 1),
            "votes": round(voted - built, 1),
            "training": round(trained - voted, 1),
            "scoring": round(time.perf_counter() - trained, 1),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=60)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="reuse this data folder (default: a fresh temporary one)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loop-demo-") as tmp:
        out = run(args.votes, args.data_dir or Path(tmp))
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['votes']} truthful votes on the demo project; run: {out['split']}")
    print(f"pair accuracy vs the known order over {out['demo_pairs_scored']} demo pairs:")
    print(f"  demo model, untuned: {out['accuracy_untuned']:.1%}")
    print(f"  after the personal fine-tune: {out['accuracy_tuned']:.1%} (best step "
          f"{out['best_step']} of {out['steps']})")  # fmt: skip
    print(f"run's own test metrics at the kept step: {out['run_metrics']}")
    print(f"seconds: {out['seconds']}")


if __name__ == "__main__":
    main()
