"""Service-level latency: next pair and vote (rating update + durable SQLite commit).

Runs the real service (SQLite WAL with synchronous=FULL, the trueskill package, the
project's pair selector) on synthetic projects of N images and reports p50/p99 in
milliseconds and the process's resident memory after loading.

``--history`` starts each project with that many noisy random votes per image in the
database (so ``active`` is past its warm-up and picks pairs by the Bradley-Terry
refit, which is refitted every N/20 votes), and ``--board-every`` opens the default
(``auto``) leaderboard every that many votes: with enough votes the run includes
refits, which run in a background thread and are never waited for.
``--inline-refits`` runs them inside the pick or view instead (the old behaviour),
for comparison in the same run.

    python bench/vote_bench.py --sizes 1000 10000 100000 --votes 300 --json out.json
    python bench/vote_bench.py --sizes 100000 --history 2.5 --votes 6000 --board-every 500
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranker.selection import refit_model  # noqa: E402
from ranker.service import Studio  # noqa: E402
from ranker.store import ImageRow  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _synthetic_images(n: int) -> list[ImageRow]:
    return [
        ImageRow(f"{i:016x}", i, f"/synthetic/{i}.jpg", f"{i}.jpg", 512, 512, "JPEG", 1000)
        for i in range(n)
    ]


def _history(n: int, per_image: float, quality: np.ndarray, rng: np.random.Generator):
    """Noisy random votes (about 76% agree with ``quality``) as the store takes them."""
    for k in range(int(per_image * n)):
        i, j = (int(x) for x in rng.choice(n, 2, replace=False))
        better = quality[i] + rng.normal() > quality[j] + rng.normal()
        yield (
            f"h{k}", f"{i:016x}", f"{j:016x}", "left" if better else "right", "seed",
            float(k), None, "import",
        )  # fmt: skip


def measure(
    n: int,
    votes: int,
    strategy: str,
    seed: int = 0,
    history: float = 0.0,
    board_every: int = 0,
) -> dict:
    """Vote ``votes`` times on a fresh project of ``n`` images; latency percentiles in ms."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n)
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "studio.db")
        studio.create_project("bench", strategy=strategy)
        project_id = studio.store.get_project("bench").id
        studio.store.add_images(project_id, _synthetic_images(n))
        if history:
            studio.store.add_votes(project_id, _history(n, history, quality, rng))
        studio._sessions.clear()  # reopen: the session loads the images
        t0 = time.perf_counter()
        project = studio.project("bench")
        load_s = time.perf_counter() - t0
        rss = _rss_mb()
        pick, vote, board = [], [], []
        for k in range(votes):
            if board_every and k % board_every == 0:
                t0 = time.perf_counter()
                project.leaderboard()
                board.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            pair = project.next_pair("bench")
            t1 = time.perf_counter()
            i, j = project.index[pair.left.uid], project.index[pair.right.uid]
            outcome = "left" if quality[i] + rng.normal() > quality[j] + rng.normal() else "right"
            project.vote(pair.pair_id, outcome, "bench")
            t2 = time.perf_counter()
            pick.append((t1 - t0) * 1e3)
            vote.append((t2 - t1) * 1e3)
        studio.close()
    return {
        "images": n,
        "votes": votes,
        "strategy": strategy,
        "load_s": round(load_s, 3),
        "history_votes": int(history * n),
        "next_pair_ms": {"p50": _pct(pick, 50), "p99": _pct(pick, 99), "max": _pct(pick, 100)},
        "vote_ms": {"p50": _pct(vote, 50), "p99": _pct(vote, 99), "max": _pct(vote, 100)},
        "leaderboard_ms": (
            {"p50": _pct(board, 50), "p99": _pct(board, 99), "max": _pct(board, 100)}
            if board
            else None
        ),
        "max_rss_mb": round(rss, 1),
    }


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--votes", type=int, default=300)
    parser.add_argument("--strategy", default="active")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--history", type=float, default=0.0, help="votes/image already in")
    parser.add_argument("--board-every", type=int, default=0, help="auto leaderboard every K")
    parser.add_argument("--inline-refits", action="store_true", help="refits inside requests")
    args = parser.parse_args(argv)
    if args.inline_refits:
        refit_model.INLINE_SIZE = 1 << 62
    results = []
    print(
        "images  strategy  next_pair p50/p99/max ms  vote p50/p99/max ms"
        "  leaderboard p50/p99/max ms  load s  max RSS MB"
    )
    for n in args.sizes:
        r = measure(
            n, args.votes, args.strategy, history=args.history, board_every=args.board_every
        )
        results.append(r)
        b = r["leaderboard_ms"] or {"p50": 0.0, "p99": 0.0, "max": 0.0}
        print(
            f"{n:>6}  {r['strategy']:<8}  {r['next_pair_ms']['p50']:>6.2f} / "
            f"{r['next_pair_ms']['p99']:>6.2f} / {r['next_pair_ms']['max']:>7.1f}  "
            f"{r['vote_ms']['p50']:>5.2f} / {r['vote_ms']['p99']:>5.2f} / {r['vote_ms']['max']:>6.1f}"
            f"  {b['p50']:>7.1f} / {b['p99']:>7.1f} / {b['max']:>7.1f}"
            f"  {r['load_s']:>6.2f}  {r['max_rss_mb']:>8.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
