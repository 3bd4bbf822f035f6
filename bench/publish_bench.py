"""Publishing at scale: peak memory, time and bytes written, from project to training reader.

For each size (images x votes x KB per image) a project is generated: JPEG files of
noise (distinct bytes, about the asked size) and seeded votes by a consistent labeler
with a hidden quality. Each phase runs in its own process, so its peak RSS is its own:

- ``build+save``: ``build_preference_dataset`` then ``save_parquet`` (the published
  folder: pairs by uid, each image once);
- ``load``: ``datasets.load_dataset`` of the pairs and of the ``images`` config into a
  fresh cache (bytes written = the cache);
- ``epoch``: the training reader (``training.sources.read_dataset``) then the encoded
  bytes of both images of every train pair, in a seeded random order (what the
  DataLoader workers read before decoding; decoding is left out, it does not depend
  on the layout);
- ``baseline``: the layout before images were stored once (every pair row embeds its
  two images), run from git at ``--baseline-rev`` on the first size with
  ``--baseline-votes`` votes (it needs about 0.8 MB of RAM per vote at 100 KB).

    nice -n 10 python bench/publish_bench.py --sizes 200:5000:150 2000:50000:500 \\
        --json publish.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if os.environ.get("PUBLISH_BENCH_CODE"):  # the baseline phase: the old packages first
    sys.path.insert(0, os.environ["PUBLISH_BENCH_CODE"])


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# --- phases (each runs in a child process) ------------------------------------------------
def make_project(work: Path, n: int, votes: int, kb: int, seed: int = 0) -> dict:
    import numpy as np
    from PIL import Image

    from ranker.intake import content_uid
    from ranker.service import Studio
    from ranker.store import ImageRow

    rng = np.random.default_rng(seed)
    side = int((kb * 1024 / 0.95) ** 0.5)  # noise JPEG q90: about 0.95 bytes per pixel
    noise = rng.integers(0, 256, size=(side + n, side, 3), dtype=np.uint8)
    folder = work / "images"
    folder.mkdir(parents=True)
    rows, total = [], 0
    for i in range(n):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(noise[i : i + side]).save(path, "JPEG", quality=90)
        data = path.read_bytes()
        total += len(data)
        rows.append(
            ImageRow(content_uid(data), i, str(path), path.name, side, side, "JPEG", len(data))
        )
    studio = Studio(work / "studio.db")
    studio.create_project("bench")
    pid = studio.store.get_project("bench").id
    studio.store.add_images(pid, rows)
    quality = rng.normal(size=n)
    pairs = rng.integers(0, n, size=(votes * 2, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]][:votes]
    new = []
    for k, (i, j) in enumerate(pairs):
        outcome = "left" if quality[i] > quality[j] else "right"
        new.append((None, rows[i].uid, rows[j].uid, outcome, "bench", 1.7e9 + k, 900.0, "bench"))
    studio.store.add_votes(pid, new)
    return {"image_bytes": total, "images": n, "votes": votes}


def build_save(work: Path, out: Path) -> dict:
    from prefdata.ours import build_preference_dataset, save_parquet
    from ranker.service import Studio

    project = Studio(work / "studio.db").project("bench")
    t0 = time.perf_counter()
    save_parquet(build_preference_dataset(project, 0.1, seed=0), out)
    return {"seconds": time.perf_counter() - t0, "bytes": _folder_bytes(out)}


def load(out: Path, cache: Path) -> dict:
    from datasets import load_dataset

    t0 = time.perf_counter()
    pairs = load_dataset(str(out), cache_dir=str(cache))
    images = load_dataset(str(out), "images", split="train", cache_dir=str(cache))
    rows = pairs["train"].num_rows + images.num_rows
    return {"seconds": time.perf_counter() - t0, "bytes": _folder_bytes(cache), "rows": rows}


def epoch(out: Path) -> dict:
    import numpy as np

    from training.sources import read_dataset

    t0 = time.perf_counter()
    data = read_dataset(out)
    order = np.random.default_rng(0).permutation(len(data.train))
    read = 0
    for i in order:
        for index in (data.train.a[i], data.train.b[i]):
            read += len(data.sources[index].read())
    return {"seconds": time.perf_counter() - t0, "bytes": 0, "pairs": len(data.train), "read": read}


def _child(phase: str, args: list[str], code: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PUBLISH_BENCH_CODE"}
    if code:
        env["PUBLISH_BENCH_CODE"] = code
    cmd = [sys.executable, __file__, "--phase", phase, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_phase(phase: str, args: list[str]) -> None:
    paths = [Path(a) for a in args]
    if phase == "make":
        result = make_project(paths[0], *(int(a) for a in args[1:]))
    elif phase in ("build+save", "baseline"):  # baseline: the same calls on the old code
        import ranker

        result = build_save(*paths)
        result["code"] = str(Path(ranker.__file__).parent.parent)
    elif phase == "load":
        result = load(*paths)
    else:
        result = epoch(*paths)
    result["peak_rss_mb"] = round(_rss_mb())
    print(json.dumps(result))


def _baseline_code(rev: str, dest: Path) -> str:
    """The old ranker/common packages from git, for the baseline phase's PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "ranker", "common"],
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return str(dest)


def bench(size: str, work_root: Path, baseline_rev: str | None, baseline_votes: int) -> list[dict]:
    n, votes, kb = (int(x) for x in size.split(":"))
    work = Path(tempfile.mkdtemp(prefix="publish-bench-", dir=work_root))
    try:
        made = _child("make", [str(work), str(n), str(votes), str(kb)])
        base = {"images": n, "votes": votes, "kb": kb, "image_bytes": made["image_bytes"]}
        out = work / "published"
        rows = []
        for phase, args in (
            ("build+save", [str(work), str(out)]),
            ("load", [str(out), str(work / "cache")]),
            ("epoch", [str(out)]),
        ):
            rows.append({**base, "phase": phase, **_child(phase, args)})
        shutil.rmtree(work / "cache", ignore_errors=True)
        parquet = sum(p.stat().st_size for p in out.rglob("*.parquet"))
        rows[0]["parquet_bytes"] = parquet
        rows[0]["size_target_bytes"] = int(1.2 * made["image_bytes"] + 200 * votes)
        if baseline_rev:
            old = work / "old"
            small = work / "small"
            _child("make", [str(small), str(n), str(baseline_votes), str(kb)])
            code = _baseline_code(baseline_rev, work / "oldcode")
            result = _child("baseline", [str(small), str(old)], code=code)
            rows.append({**base, "votes": baseline_votes, "phase": f"baseline ({baseline_rev})",
                         **result})  # fmt: skip
            new = _child("build+save", [str(small), str(work / "new-small")])
            rows.append({**base, "votes": baseline_votes, "phase": "build+save", **new})
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["200:5000:150", "2000:50000:500"],
                        help="images:votes:KB per image")  # fmt: skip
    parser.add_argument("--work", default=None, help="folder for generated data (removed after)")
    parser.add_argument("--baseline-rev", default="e9ec29c", help="git revision of the old layout")
    parser.add_argument("--baseline-votes", type=int, default=1000)
    parser.add_argument("--json", default=None, help="write the rows here too")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.phase:
        _run_phase(args.phase, rest)
        return
    work_root = Path(args.work or tempfile.gettempdir())
    rows = []
    for i, size in enumerate(args.sizes):
        rows += bench(size, work_root, args.baseline_rev if i == 0 else None, args.baseline_votes)
    header = "| images | votes | KB/image | phase | peak RSS MB | seconds | bytes written |"
    print(header + "\n|---|---|---|---|---|---|---|")
    for r in rows:
        kb = r["image_bytes"] / r["images"] / 1024
        print(f"| {r['images']} | {r['votes']} | {kb:.0f} | {r['phase']} | {r['peak_rss_mb']} "
              f"| {r['seconds']:.1f} | {r['bytes'] / 1e6:.1f} MB |")  # fmt: skip
        if "parquet_bytes" in r:
            print(f"|  |  |  | Parquet {r['parquet_bytes'] / 1e6:.1f} MB vs target "
                  f"{r['size_target_bytes'] / 1e6:.1f} MB (1.2 x {r['image_bytes'] / 1e6:.1f} MB "
                  f"images + 200 B/vote) |  |  |  |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
