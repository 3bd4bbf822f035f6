"""Load test of the Ranking API over Gradio's HTTP API, against a trivial baseline.

Two servers are run one after the other, each in its own process, and get the same
load from this process (asyncio + httpx, ``POST /gradio_api/call/<api>`` then the
event stream, the protocol behind ``gradio_client`` minus its 50 ms polling):

* studio: the real app (Ranking tab) with one project of 1,000 images; a labeler
  sends ``vote`` and the answer carries the next pair (one round trip per vote);
* baseline: a Gradio app whose ``vote`` handler only appends a row to SQLite (WAL,
  synchronous=FULL) and returns a new id.

Loads (60 s each by default): "human" = 32 labelers, each voting every 2 s +- 50%
(open loop: a labeler's schedule does not wait for slow answers); "afap" = 32
labelers in a closed loop. Reported: votes/s and p50/p95 from sending a vote to
receiving the next pair; then every acknowledged vote is looked up in the database
(lost = acknowledged but absent, duplicated = stored more than once).

Labelers authenticate as on a public Space: the studio runs with an admin token, so
each labeler first calls ``/join`` for its labeler key and sends the key with every
call (the server checks its signature and claim on each one); the baseline's
``join`` just echoes the name.

    python bench/load_bench.py                   # full run, about 5 minutes
    python bench/load_bench.py --seconds 10      # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROJECT = "load"
OUTCOMES = ("left", "right", "tie")


# --- servers (run in child processes) ---------------------------------------------------
def serve_studio(data_dir: Path, port: int) -> None:
    import os

    import app
    from ui.context import StudioContext

    os.environ.setdefault("STUDIO_ADMIN_TOKEN", "bench-owner")  # visitors need keys
    ctx = StudioContext.from_env(data_dir)
    app.TABS = tuple(t for t in app.TABS if t[0] == "Ranking")
    demo = app.build_demo(ctx)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True, **app.launch_options(ctx))


def serve_baseline(data_dir: Path, port: int) -> None:
    """The trivial server, under the same Gradio settings the studio applies to itself."""
    import os
    import threading

    import gradio as gr

    from ui.ranking.tab import GIL_SWITCH_INTERVAL_S, GRADIO_ENV

    os.environ.update(GRADIO_ENV)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    db = sqlite3.connect(data_dir / "baseline.db", check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS votes (pair_id TEXT, labeler TEXT, outcome TEXT, at REAL)"
    )
    lock = threading.Lock()

    def vote(project: str, labeler: str, pair_id: str, outcome: str, admin_token: str = "") -> dict:
        with lock:
            db.execute(
                "INSERT INTO votes VALUES (?,?,?,?)", (pair_id, labeler, outcome, time.time())
            )
        return {"pair_id": uuid.uuid4().hex, "message": ""}

    def next_pair(project: str, labeler: str, admin_token: str = "") -> dict:
        return {"pair_id": uuid.uuid4().hex, "message": ""}

    def join(project: str, name: str, admin_token: str = "") -> dict:
        return {"key": name, "labeler": name, "project": project}

    with gr.Blocks() as demo:
        gr.api(join, api_name="join", concurrency_limit=None)
        gr.api(vote, api_name="vote", concurrency_limit=None)
        gr.api(next_pair, api_name="next_pair", concurrency_limit=None)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


# --- set-up ---------------------------------------------------------------------------
def prepare_project(data_dir: Path, n: int) -> None:
    """A project of ``n`` small distinct images, display copies made (as after warm-up)."""
    from PIL import Image

    from ui.context import StudioContext
    from ui.thumbnails import DisplayCache

    folder = data_dir / "images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i:05d}.png")
    ctx = StudioContext(data_dir=data_dir)
    project = ctx.studio.create_project(PROJECT)
    project.add_folder(folder)
    cache = DisplayCache(ctx.cache_dir)
    for img in project.images:
        cache.ensure(img.uid, img.path)
        cache.ensure(img.uid, img.path, "thumb")
    ctx.studio.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            kind,
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(url + "/config", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError(f"{kind} server did not start")


# --- load -----------------------------------------------------------------------------
async def call(http, api: str, data: list, session: str) -> tuple[dict | None, float]:
    """One call over the HTTP API; (result or None on error, milliseconds).

    ``session`` is the labeler's session hash: like a browser tab, a labeler keeps one
    (a fresh one per call would make Gradio build a session state every time).
    """
    t0 = time.perf_counter()
    r = await http.post(f"/gradio_api/call/{api}", json={"data": data, "session_hash": session})
    event_id = r.json()["event_id"]
    event, result = None, None
    async with http.stream("GET", f"/gradio_api/call/{api}/{event_id}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "complete":
                    result = json.loads(line[5:])[0]
                break
    return result, (time.perf_counter() - t0) * 1000


KEYS: dict[tuple[str, str], str] = {}  # (server, labeler name) -> labeler key


async def key_of(http, who: str) -> str:
    """The labeler's key, from /join once per server (a labeler keeps its key)."""
    cached = KEYS.get((str(http.base_url), who))
    if cached is None:
        res, _ = await call(http, "join", [PROJECT, who, ""], who)
        cached = KEYS[(str(http.base_url), who)] = res["key"]
    return cached


async def labeler(http, who: str, mode: str, end: float, stats: dict, rng: random.Random) -> None:
    name, who = who, await key_of(http, who)
    first, _ = await call(http, "next_pair", [PROJECT, who, ""], name)
    pair = first["pair_id"] if first else None
    due = time.monotonic() + rng.uniform(0, 2.0)  # labelers start spread out
    while True:
        if mode == "human":
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += rng.uniform(1.0, 3.0)
        if time.monotonic() >= end:
            return
        if pair is None:
            stats["no_pair"] += 1
            res, _ = await call(http, "next_pair", [PROJECT, who, ""], name)
            pair = res["pair_id"] if res else None
            continue
        try:
            res, ms = await call(http, "vote", [PROJECT, who, pair, rng.choice(OUTCOMES), ""], name)
        except Exception:  # a transport failure: the vote is not acknowledged
            res = None
        if res is None:
            stats["errors"] += 1
            res2, _ = await call(http, "next_pair", [PROJECT, who, ""], name)
            pair = res2["pair_id"] if res2 else None
            continue
        stats["latency_ms"].append(ms)
        if res.get("message"):
            stats["refused"] += 1
        else:
            stats["acked"].append(pair)
        pair = res["pair_id"]


async def run_load(url: str, mode: str, seconds: float, labelers: int, seed: int, tag: str) -> dict:
    """One slice of load; raw latencies and acknowledged pair ids.

    Labelers keep their names (and Gradio session) from slice to slice, as a person
    keeps a tab open; only the warm-up uses its own names.
    """
    import httpx

    stats = {"latency_ms": [], "acked": [], "errors": 0, "refused": 0, "no_pair": 0}
    limits = httpx.Limits(max_connections=labelers * 2, max_keepalive_connections=labelers * 2)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        start_t = time.monotonic()
        end = start_t + seconds
        await asyncio.gather(
            *(
                labeler(
                    http,
                    f"bench-{tag}-{k}" if tag == "warm" else f"bench-{mode}-{k}",
                    mode,
                    end,
                    stats,
                    random.Random(seed * 1000 + k),
                )
                for k in range(labelers)
            )
        )
        stats["seconds"] = time.monotonic() - start_t
    return stats


async def open_sessions(url: str, names: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for who in names:
            await call(http, "next_pair", [PROJECT, await key_of(http, who), ""], who)


def summarise(server: str, mode: str, slices: list[dict]) -> dict:
    lat = np.concatenate([np.asarray(s["latency_ms"], dtype=float) for s in slices])
    votes = sum(len(s["acked"]) for s in slices)
    seconds = sum(s["seconds"] for s in slices)
    pct = {
        f"p{q}_ms": float(np.percentile(lat, q)) if len(lat) else float("nan") for q in (50, 95, 99)
    }
    return {
        "server": server,
        "mode": mode,
        "votes": votes,
        "votes_per_s": votes / seconds,
        **pct,
        "errors": sum(s["errors"] for s in slices),
        "refused": sum(s["refused"] for s in slices),
    }


def check_db(db_path: Path, table_sql: str, acked: list[str]) -> dict:
    """Every acknowledged vote stored exactly once?"""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    counts = dict(db.execute(table_sql).fetchall())
    db.close()
    lost = sum(1 for p in acked if counts.get(p, 0) == 0)
    duplicated = sum(1 for p in acked if counts.get(p, 0) > 1)
    acked_set = set(acked)
    extra = sum(c for p, c in counts.items() if p not in acked_set)
    return {
        "lost": lost,
        "duplicated": duplicated,
        "stored_not_acked": extra,
        "acked_twice_by_client": len(acked) - len(acked_set),
    }


CHECK_SQL = {
    "studio": (
        "studio.db",
        "SELECT pair_id, COUNT(*) FROM votes WHERE labeler LIKE 'bench-%'"
        " AND labeler NOT LIKE '%-warm-%'"
        " AND undone = 0 GROUP BY pair_id",
    ),
    "baseline": (
        "baseline.db",
        "SELECT pair_id, COUNT(*) FROM votes WHERE labeler NOT LIKE '%-warm-%' GROUP BY pair_id",
    ),
}


def bench(dirs: dict[str, Path], args) -> list[dict]:
    """Both servers up; each load alternates between them in short slices.

    Alternating keeps the comparison fair when other work on the machine comes and
    goes: both servers see the same background, slice by slice.
    """
    servers = {kind: start(kind, path) for kind, path in dirs.items()}
    slices: dict[tuple[str, str], list[dict]] = {}
    try:
        for _, url in servers.values():
            asyncio.run(run_load(url, "afap", 2.0, 4, seed=99, tag="warm"))  # not reported
            # Labelers open the page before the clock starts (Gradio builds a session
            # state per tab, ~25 ms for this app); the load measures voting.
            names = [f"bench-{m}-{k}" for m in args.modes for k in range(args.labelers)]
            asyncio.run(open_sessions(url, names))
        for mode in args.modes:
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(servers)[::-1]
                for kind in order:
                    res = asyncio.run(
                        run_load(
                            servers[kind][1],
                            mode,
                            args.seconds / args.rounds,
                            args.labelers,
                            seed=r,
                            tag=f"r{r}",
                        )
                    )
                    slices.setdefault((kind, mode), []).append(res)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    rows = [summarise(kind, mode, parts) for (kind, mode), parts in slices.items()]
    for kind, path in dirs.items():
        db, sql = CHECK_SQL[kind]
        acked = [
            p for (k, _), parts in slices.items() if k == kind for s in parts for p in s["acked"]
        ]
        rows.append({"server": kind, "check": check_db(path / db, sql, acked)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each load")
    parser.add_argument("--labelers", type=int, default=32)
    parser.add_argument("--modes", nargs="+", choices=("human", "afap"), default=["human", "afap"])
    parser.add_argument(
        "--rounds", type=int, default=4, help="slices per load, alternating between the two servers"
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--serve", choices=("studio", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "studio":
        return serve_studio(args.data_dir, args.port)
    if args.serve == "baseline":
        return serve_baseline(args.data_dir, args.port)

    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        studio_dir, base_dir = Path(tmp) / "studio", Path(tmp) / "baseline"
        base_dir.mkdir()
        t0 = time.time()
        prepare_project(studio_dir, args.images)
        print(f"project of {args.images} images ready in {time.time() - t0:.1f} s", flush=True)
        rows = bench({"studio": studio_dir, "baseline": base_dir}, args)
    report(rows, args)


def report(rows: list[dict], args) -> None:
    loads = {(r["server"], r["mode"]): r for r in rows if "mode" in r}
    print(f"\n{args.labelers} labelers, {args.seconds:.0f} s per load, {args.images} images")
    print(
        f"{'server':9} {'load':6} {'votes':>6} {'votes/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'errors':>6}"
    )
    for (server, mode), r in loads.items():
        print(
            f"{server:9} {mode:6} {r['votes']:6d} {r['votes_per_s']:8.1f} {r['p50_ms']:7.1f} "
            f"{r['p95_ms']:7.1f} {r['p99_ms']:7.1f} {r['errors']:6d}"
        )
    for r in rows:
        if "check" in r:
            print(f"{r['server']}: {r['check']}")
    summary = {}
    if ("studio", "human") in loads:
        s_h, b_h = loads[("studio", "human")], loads[("baseline", "human")]
        summary["human_p95_ratio"] = s_h["p95_ms"] / b_h["p95_ms"]
        summary["human_p95_ok"] = s_h["p95_ms"] <= 150 and s_h["p95_ms"] <= 1.5 * b_h["p95_ms"]
    if ("studio", "afap") in loads:
        s_a, b_a = loads[("studio", "afap")], loads[("baseline", "afap")]
        summary["afap_throughput_ratio"] = s_a["votes_per_s"] / b_a["votes_per_s"]
        summary["afap_ok"] = s_a["votes_per_s"] >= 0.7 * b_a["votes_per_s"]
    summary["no_lost_or_duplicated"] = all(
        r["check"]["lost"] == 0 and r["check"]["duplicated"] == 0 for r in rows if "check" in r
    )
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
