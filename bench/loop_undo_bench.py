"""Model in the loop: what an undo and a rebuild cost, with and without snapshots.

The model-in-the-loop selector (:class:`ranker.selection.model_loop.ModelLoopSelector`)
is a replay of the vote log. This times, at N images with V votes, in one run and on the
same log:

- ``rebuild``: a new selector catching up with the whole log (a restart, attaching a
  model, new images' features): every vote replayed, snapshots or not;
- ``undo last``: the session's undo of the latest vote (the log loses it, the selector
  is reset, the next request catches up);
- ``undo older``: an undo of a vote ``--older`` votes back (another labeler's vote:
  the later votes are re-applied after it);
- ``reload``: the project reloaded on the same features (a settings change), the new
  selector adopting the old one's snapshots;
- ``restart``: a fresh selector (a server restart, the project opened in a new process)
  catching up with the log, with the snapshot file the first one wrote on disk
  (:mod:`ranker.selection.snapshot_file`) or, ``off``, without one.

``off`` is the same selector with snapshots turned off (``snapshots=False``: every
rebuild replays the whole log, as before snapshots); both must end in the same state,
which the script checks. The log is random pairs judged by 90% Thurstone labelers in
the 85% world of ``bench/feature_world.py`` (a model in the loop's own picks would give
a log of the same length and cost).

Usage:
    python bench/loop_undo_bench.py --n 10000 --votes 10000 30000   # the README numbers
    python bench/loop_undo_bench.py --n 2000 --votes 2000           # a quick look
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as the other benches: one core per process

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feature_world import make_world  # noqa: E402
from rank_bench import noise_scale, p_first_wins  # noqa: E402

from ranker.online_head import HeadFeatures  # noqa: E402
from ranker.pool import Pool  # noqa: E402
from ranker.selection.model_loop import ModelLoopSelector  # noqa: E402
from ranker.selection.snapshot_file import SnapshotFile  # noqa: E402


def vote_log(q: np.ndarray, votes: int, seed: int) -> Pool:
    """A pool with ``votes`` random pairs judged by 90% Thurstone labelers."""
    rng = np.random.default_rng([seed, 5])
    pool, scale = Pool.empty(len(q)), noise_scale(0.9, "thurstone")
    for _ in range(votes):
        a, b = (int(i) for i in rng.choice(len(q), 2, replace=False))
        w, lo = (a, b) if rng.random() < p_first_wins(q, a, b, scale, "thurstone") else (b, a)
        pool.record(w, lo, False)
    return pool


def _catch_up(selector: ModelLoopSelector, pool: Pool) -> float:
    t0 = time.perf_counter()
    selector.ranking(pool)  # what the next request does after an undo
    return time.perf_counter() - t0


def _drop(pool: Pool, k: int) -> None:
    """Undo vote ``k``: the log loses it, the later votes stay in order."""
    for votes in (pool.first, pool.second, pool.result):
        del votes[k]
    pool.counts = np.bincount(np.concatenate([pool.first, pool.second]), minlength=pool.n)


def _state(sel: ModelLoopSelector) -> tuple:
    return sel.excess_loss, sel.switches, sel.head.scores, sel.votes_only.scores


def run(features: HeadFeatures, log: Pool, older: int, folder: Path) -> dict:
    out, states = {}, {}
    for mode in ("off", "on"):
        pool = Pool.empty(log.n)
        for w, lo, r in zip(log.first, log.second, log.result, strict=True):
            pool.record(w, lo, r == 0.5)
        file = SnapshotFile(folder / f"{mode}-loop.npz") if mode == "on" else None
        sel = ModelLoopSelector(features, snapshots=mode == "on", snapshot_file=file)
        times = {"rebuild": _catch_up(sel, pool)}
        _drop(pool, pool.n_votes - 1)
        sel.reset()  # the session's undo
        times["undo last"] = _catch_up(sel, pool)
        _drop(pool, pool.n_votes - older)
        sel.reset()
        times["undo older"] = _catch_up(sel, pool)
        new = ModelLoopSelector(features, snapshots=mode == "on")
        new.adopt(sel)
        times["reload"] = _catch_up(new, pool)
        fresh = ModelLoopSelector(features, snapshots=mode == "on", snapshot_file=file)
        times["restart"] = _catch_up(fresh, pool)
        out[mode] = times
        out[f"{mode} snapshot MB"] = new._snapshots.nbytes() / 2**20
        out["model on"] = new.model_on
        states[mode], states[f"{mode} restart"] = _state(new), _state(fresh)
        if file is not None:
            out["file MB"] = file.path.stat().st_size / 2**20
            t0 = time.perf_counter()
            fresh._write(pool)  # what a refit point adds to a vote request
            out["file write s"] = time.perf_counter() - t0
    for other in ("on", "off restart", "on restart"):
        a, b = states["off"], states[other]
        assert a[0] == b[0] and a[1] == b[1], f"{other}: snapshots changed the guard"
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3]), f"{other}: a fit"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--votes", type=int, nargs="+", default=[10_000, 30_000])
    parser.add_argument("--dims", type=int, default=1152, help="embedding dims (so400m: 1152)")
    parser.add_argument("--older", type=int, default=500, help="votes back of the older undo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    world = make_world(args.n, args.dims, 0.85, args.seed)
    features = HeadFeatures.from_embeddings(world.embeddings, world.base_scores, seed=args.seed)
    print(f"N = {args.n}, embeddings {args.dims} dims, head p = {features.p}")
    print("| votes | what | no snapshots (s) | snapshots (s) | speed-up |")
    print("|---|---|---|---|---|")
    for votes in args.votes:
        with tempfile.TemporaryDirectory() as folder:
            r = run(features, vote_log(world.quality, votes, args.seed), args.older, Path(folder))
        for what in ("rebuild", "undo last", "undo older", "reload", "restart"):
            off, on = r["off"][what], r["on"][what]
            print(f"| {votes:,} | {what} | {off:.2f} | {on:.3f} | {off / on:.0f}x |", flush=True)
        extra = {k: v for k, v in r.items() if k not in ("off", "on")}
        print(json.dumps({"votes": votes, **extra}), flush=True)


if __name__ == "__main__":
    main()
