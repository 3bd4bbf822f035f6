"""Model in the loop: votes per image to reach Kendall tau 0.8 / 0.9, with and without.

Worlds from ``bench/feature_world.py`` (embeddings, a base head agreeing 75% with the
truth, a best possible linear head agreeing 80/85/90%, or no signal at all); labelers
and TrueSkill updates exactly as in ``bench/rank_bench.py`` (Thurstone, 100% or 90%).
Strategies, every one the selector object the app would use and the same seeds:

- ``active``: the default strategy alone (it ignores embeddings, so one run per seed
  serves every world: they share the hidden qualities);
- ``active+prior``: ``active`` on a project pre-ranked by the base model (static priors,
  ``prior_from_scores`` at 75%);
- ``model_loop``: :class:`ranker.selection.model_loop.ModelLoopSelector`.

Each is scored by its own ranking and by the Bradley-Terry refit of its votes (the
leaderboard's refit order), which separates pair selection from ranking. A run stops
once both reach tau 0.9 or at ``--max-budget`` votes per image.

Usage:
    python bench/loop_bench.py --quick                      # smoke run, a minute
    python bench/loop_bench.py --sizes 1000 10000 --seeds 2 # the README rows
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small BLAS calls: threads only fight over cores

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feature_world import make_world, quality  # noqa: E402
from rank_bench import PRESET, _pool_map, noise_scale, p_first_wins, votes_needed  # noqa: E402

from ranker.online_head import HeadFeatures  # noqa: E402
from ranker.pool import Pool  # noqa: E402
from ranker.selection import make_selector, refit  # noqa: E402
from ranker.selection.model_loop import ModelLoopSelector  # noqa: E402
from ranker.tsmath import draw_margin, prior_from_scores, rate_one  # noqa: E402

LABELERS = {"noiseless": 1.0, "90%": 0.9}
WORLDS = {"80%": 0.8, "85%": 0.85, "90%": 0.9, "none": None}
CHECKPOINTS = (
    0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0,
    4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0,
)  # fmt: skip
TARGETS = (0.8, 0.9)


def strict_tau(scores: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> float:
    """Kendall tau of the order a leaderboard shows: tied scores broken at random.

    Tau-b would reward a ranking for leaving unvoted images tied (its denominator
    shrinks), which flatters vote-only rankings against a model that orders them all.
    """
    order = np.lexsort((rng.random(len(scores)), scores))
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(len(scores))
    return float(kendalltau(ranks, q)[0])


def simulate(job: dict) -> dict:
    """One strategy on one world: tau (own and refit ranking) at each checkpoint."""
    n, seed = job["n"], job["seed"]
    q = quality(n, seed)
    world = None
    if job["strategy"] != "active":
        world = make_world(
            n, job["d"], WORLDS[job["world"]], seed, labeler_agreement=LABELERS[job["labelers"]]
        )
        assert np.array_equal(world.quality, q)  # the worlds share the truth per seed
    return run(job, q, world.embeddings if world else None, world.base_scores if world else None)


def run(job: dict, q: np.ndarray, embeddings, base_scores) -> dict:
    """``job["strategy"]`` labels a project of hidden qualities ``q`` (see :func:`simulate`);
    ``embeddings`` and ``base_scores`` feed ``active+prior`` and ``model_loop``."""
    n, seed, strategy = job["n"], job["seed"], job["strategy"]
    rng = np.random.default_rng([seed, 2])
    scale = noise_scale(LABELERS[job["labelers"]], "thurstone")
    pool = Pool.empty(n, **PRESET)
    if strategy == "active+prior":
        pool.seed(*prior_from_scores(base_scores, 0.75, prior_sigma=PRESET["prior_sigma"]))
    if strategy == "model_loop":
        features = HeadFeatures.from_embeddings(embeddings, base_scores, seed=seed)
        selector = ModelLoopSelector(features)
    else:
        selector = make_selector("active")
    beta, tau = PRESET["beta"], PRESET["tau"]
    eps = draw_margin(PRESET["draw_probability"], beta)
    budgets = [b for b in CHECKPOINTS if b <= job["max_budget"] + 1e-9]
    own, refit_tau, picks, observes, pick_cpu = [], [], [], [], []
    tiebreak = np.random.default_rng([seed, 3])
    last: set = set()
    for budget in budgets:
        while pool.n_votes < int(round(budget * n)):
            t0, c0 = time.perf_counter(), time.thread_time()
            pair = selector.next_pair(pool, rng, avoid=last)
            picks.append(time.perf_counter() - t0)
            pick_cpu.append(time.thread_time() - c0)
            a, b = pair
            if rng.random() < 0.5:
                a, b = b, a
            w, lo = (a, b) if rng.random() < p_first_wins(q, a, b, scale, "thurstone") else (b, a)
            mu, sd = pool.mu, pool.sigma
            mu[w], sd[w], mu[lo], sd[lo] = rate_one(
                mu[w], sd[w], mu[lo], sd[lo], 1.0, beta, tau, eps
            )
            pool.record(w, lo, False)
            t0 = time.perf_counter()
            selector.observe(pool, w, lo, 1.0)  # model_loop: the online step and refits
            observes.append(time.perf_counter() - t0)
            last = {pair}
        own.append(strict_tau(selector.ranking(pool), q, tiebreak))
        refit_tau.append(strict_tau(refit(pool)[0], q, tiebreak))
        if min(own[-1], refit_tau[-1]) >= max(TARGETS) or own[-1] >= job["stop_own"]:
            break
    ms = 1e3 * np.array(picks)
    return {
        **job,
        "budgets": budgets[: len(own)],
        "own": own,
        "refit": refit_tau,
        "pick_p50_ms": float(np.percentile(ms, 50)),
        "pick_p99_ms": float(np.percentile(ms, 99)),
        "ms_per_vote": float(ms.mean()),
        # CPU time of the pick: on a shared machine wall time's tail is other processes
        "pick_cpu_p99_ms": float(np.percentile(1e3 * np.array(pick_cpu), 99)),
        "observe_ms_per_vote": float(1e3 * np.mean(observes)),
        "observe_max_ms": float(1e3 * np.max(observes)),
        "guarded": not getattr(selector, "model_on", True),
        "switches": list(getattr(selector, "switches", [])),  # votes where the guard flipped
    }


def _needed(runs: list[dict], curve: str, target: float) -> float | None:
    """Votes per image to ``target`` on the seed-mean curve (runs stopped early hold)."""
    length = max(len(r["budgets"]) for r in runs)
    budgets = max(runs, key=lambda r: len(r["budgets"]))["budgets"]
    padded = [r[curve] + [r[curve][-1]] * (length - len(r[curve])) for r in runs]
    return votes_needed(budgets, np.mean(padded, axis=0).tolist(), target)


def _fmt(x: float | None) -> str:
    return "  >max" if x is None else f"{x:6.2f}"


def report(results: list[dict]) -> list[dict]:
    rows = []
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["n"], r["labelers"], r["world"], r["strategy"]), []).append(r)
    for (n, labelers, world, strategy), runs in sorted(groups.items(), key=str):
        row = {"n": n, "labelers": labelers, "world": world, "strategy": strategy}
        row["seeds"] = len(runs)
        for t in TARGETS:
            row[f"own_{t}"] = _needed(runs, "own", t)
            row[f"refit_{t}"] = _needed(runs, "refit", t)
        row["pick_p99_ms"] = float(np.max([r["pick_p99_ms"] for r in runs]))
        row["pick_cpu_p99_ms"] = float(np.max([r.get("pick_cpu_p99_ms", np.nan) for r in runs]))
        row["observe_ms"] = float(np.mean([r.get("observe_ms_per_vote", np.nan) for r in runs]))
        row["ms_per_vote"] = float(np.mean([r["ms_per_vote"] for r in runs]))
        rows.append(row)
    print(
        "votes per image to reach Kendall tau, ties broken at random (own ranking / Bradley-Terry refit)"
    )
    print(f"{'N':>6} {'labelers':>9} {'world':>6} {'strategy':>13}   {'tau 0.8':>15}   {'tau 0.9':>15}"
          f"   {'x active':>8} {'(0.9)':>6} {'p99 ms':>7} {'cpu p99':>7} {'ms/pick':>7} {'ms/obs':>7}")  # fmt: skip
    for row in rows:
        base = next(
            (r for r in rows if r["strategy"] == "active" and r["n"] == row["n"]
             and r["labelers"] == row["labelers"]),
            None,
        )  # fmt: skip
        for t in TARGETS:
            ok = base and base[f"own_{t}"] and row[f"own_{t}"]
            row[f"ratio_{t}"] = row[f"own_{t}"] / base[f"own_{t}"] if ok else None
        ratio, ratio9 = row["ratio_0.8"], row["ratio_0.9"]
        print(
            f"{row['n']:>6} {row['labelers']:>9} {row['world']:>6} {row['strategy']:>13}   "
            f"{_fmt(row['own_0.8'])}/{_fmt(row['refit_0.8'])}   {_fmt(row['own_0.9'])}/{_fmt(row['refit_0.9'])}"
            f"   {'' if ratio is None else f'{ratio:8.2f}':>8}"
            f" {'' if ratio9 is None else f'{ratio9:6.2f}':>6} {row['pick_p99_ms']:7.2f}"
            f" {row['pick_cpu_p99_ms']:7.2f} {row['ms_per_vote']:7.2f} {row['observe_ms']:7.2f}"
        )
    return rows


def markdown(rows: list[dict]) -> None:
    """The README's table: votes per image to strict tau 0.8 and 0.9, own / refit."""
    print(
        "| N | world | strategy | seeds | tau 0.8 (own / refit) | x `active` "
        "| tau 0.9 (own / refit) | x `active` | pick p99 ms (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = []
        for t in TARGETS:
            cells.append(f"{_fmt(r[f'own_{t}']).strip()} / {_fmt(r[f'refit_{t}']).strip()}")
            x = r.get(f"ratio_{t}")
            cells.append("" if x is None or r["strategy"] == "active" else f"{x:.2f}x")
        world = "(any)" if r["world"] == "any" else r["world"]
        print(
            f"| {r['n']:,} | {world} | `{r['strategy']}` | {r['seeds']} | "
            + " | ".join(cells)
            + f" | {r['pick_cpu_p99_ms']:.1f} |"
        )


def no_signal_check(results: list[dict]) -> None:
    """model_loop minus active (own rankings) at every budget, in the no-signal world."""
    for n in sorted({r["n"] for r in results}):
        for labelers in LABELERS:
            loop = [r for r in results if (r["n"], r["labelers"], r["world"], r["strategy"])
                    == (n, labelers, "none", "model_loop")]  # fmt: skip
            act = {r["seed"]: r for r in results if (r["n"], r["labelers"], r["strategy"])
                   == (n, labelers, "active")}  # fmt: skip
            diffs = []
            for r in loop:
                if r["seed"] in act:
                    k = min(len(r["own"]), len(act[r["seed"]]["own"]))
                    diffs.append(np.array(r["own"][:k]) - np.array(act[r["seed"]]["own"][:k]))
            if not diffs:
                continue
            k = min(len(d) for d in diffs)
            mean = np.mean([d[:k] for d in diffs], axis=0)
            se = (
                np.std([d[:k] for d in diffs], axis=0, ddof=1) / np.sqrt(len(diffs))
                if len(diffs) > 1
                else np.full(k, np.nan)
            )
            worst = int(np.argmin(mean))
            budgets = loop[0]["budgets"][:k]
            came_on = [r["switches"][0] for r in loop if r.get("switches")]
            print(
                f"no-signal world, N={n}, {labelers}: model_loop - active tau, worst "
                f"{mean[worst]:+.4f} (SE {se[worst]:.4f}) at {budgets[worst]:g} votes/image; "
                f"the model came on in {len(came_on)}/{len(loop)} runs"
                + (f" (first at votes {came_on})" if came_on else "")
            )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--dims", type=int, default=1152, help="embedding dimension d")
    parser.add_argument("--labelers", nargs="+", choices=tuple(LABELERS), default=["90%"])
    parser.add_argument("--worlds", nargs="+", choices=tuple(WORLDS), default=list(WORLDS))
    parser.add_argument("--strategies", nargs="+", default=["active", "active+prior", "model_loop"])
    parser.add_argument("--max-budget", type=float, default=8.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--stop-own",
        type=float,
        default=2.0,
        help="also stop a run once its own ranking reaches this tau (saves CPU; the refit "
        "column then reads >max beyond that budget)",
    )
    parser.add_argument("--quick", action="store_true", help="N = 300, d = 32, 1 seed")
    parser.add_argument("--json", help="write every run to this JSON file")
    parser.add_argument("--markdown", action="store_true", help="also print the README table")
    parser.add_argument(
        "--load",
        nargs="+",
        help="report the runs saved by earlier --json runs together instead of simulating "
        "(runs split across processes, same seeds and worlds)",
    )
    args = parser.parse_args(argv)
    if args.load:
        results = []
        for path in args.load:
            with open(path) as fh:
                results += json.load(fh)["runs"]
        rows = report(results)
        no_signal_check(results)
        if args.markdown:
            markdown(rows)
        return rows
    if args.quick:
        args.sizes, args.seeds, args.dims, args.max_budget = [300], 1, 32, 3.0
    jobs = []
    for n in args.sizes:
        for labelers in args.labelers:
            for seed in range(args.seeds):
                base = {"n": n, "labelers": labelers, "seed": seed, "d": args.dims}
                base["max_budget"], base["stop_own"] = args.max_budget, args.stop_own
                if "active" in args.strategies:
                    jobs.append({**base, "world": "any", "strategy": "active"})
                for world in args.worlds:
                    for s in args.strategies:
                        if s != "active":
                            jobs.append({**base, "world": world, "strategy": s})
    jobs.sort(key=lambda j: -j["n"])  # big runs first: the pool's tail stays short
    t0 = time.perf_counter()
    results = _pool_map(simulate, jobs, args.jobs)
    rows = report(results)
    no_signal_check(results)
    if args.markdown:
        markdown(rows)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "runs": results, "rows": rows}, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
