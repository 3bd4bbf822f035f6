"""Service-level latency: next pair and vote (rating update + durable SQLite commit).

Runs the real service (SQLite WAL with synchronous=FULL, the trueskill package, the
project's pair selector) on synthetic projects of N images and reports p50/p99 in
milliseconds and the process's resident memory after loading.

    python bench/vote_bench.py --sizes 1000 10000 100000 --votes 300 --json out.json
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

from ranker.service import Studio  # noqa: E402
from ranker.store import ImageRow  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _synthetic_images(n: int) -> list[ImageRow]:
    return [
        ImageRow(f"{i:016x}", i, f"/synthetic/{i}.jpg", f"{i}.jpg", 512, 512, "JPEG", 1000)
        for i in range(n)
    ]


def measure(n: int, votes: int, strategy: str, seed: int = 0) -> dict:
    """Vote ``votes`` times on a fresh project of ``n`` images; latency percentiles in ms."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "studio.db")
        studio.create_project("bench", strategy=strategy)
        studio.store.add_images(studio.store.get_project("bench").id, _synthetic_images(n))
        studio._sessions.clear()  # reopen: the session loads the images
        t0 = time.perf_counter()
        project = studio.project("bench")
        load_s = time.perf_counter() - t0
        rss = _rss_mb()
        quality = rng.normal(size=n)
        pick, vote = [], []
        for _ in range(votes):
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
        "next_pair_ms": {"p50": _pct(pick, 50), "p99": _pct(pick, 99)},
        "vote_ms": {"p50": _pct(vote, 50), "p99": _pct(vote, 99)},
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
    args = parser.parse_args(argv)
    results = []
    print("images  strategy  next_pair p50/p99 ms  vote p50/p99 ms  load s  max RSS MB")
    for n in args.sizes:
        r = measure(n, args.votes, args.strategy)
        results.append(r)
        print(
            f"{n:>6}  {r['strategy']:<8}  {r['next_pair_ms']['p50']:>7.2f} / "
            f"{r['next_pair_ms']['p99']:<7.2f}     {r['vote_ms']['p50']:>6.2f} / "
            f"{r['vote_ms']['p99']:<6.2f}   {r['load_s']:>6.2f}  {r['max_rss_mb']:>8.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
