"""A process killed while voting leaves a consistent database with every acknowledged vote."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ranker.service import Studio

from .helpers import make_images

VOTER = """
import sys
from ranker.service import Studio
project = Studio(sys.argv[1]).project("crash")
while True:
    pair = project.next_pair("bot")
    vote_id = project.vote(pair.pair_id, "left", "bot")
    print(vote_id, flush=True)
"""


def test_kill_during_voting_keeps_acknowledged_votes(tmp_path):
    db = tmp_path / "studio.db"
    studio = Studio(db)
    studio.create_project("crash", strategy="random").add_folder(
        make_images(tmp_path / "imgs", 10)[0].parent
    )
    studio.close()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", VOTER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    acknowledged = []
    deadline = time.time() + 30
    while len(acknowledged) < 40 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break  # the voter died on its own: the assertion below reports it
        acknowledged.append(int(line))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(acknowledged) >= 40
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {v.id for v in Studio(db).project("crash").votes()}
    assert set(acknowledged) <= stored


SYNC_PROBE = """
import os, sys
from ranker.service import Studio
from ranker.store import ImageRow
studio = Studio(sys.argv[1])
project = studio.create_project("sync", strategy="random")
studio.store.add_images(
    project.row.id,
    [ImageRow(f"{i:04d}", i, f"/x/{i}.png", f"{i}.png", 8, 8, "PNG", 1) for i in range(10)],
)
studio._sessions.clear()
project = studio.project("sync")
def mark(word):
    os.write(1, word.encode() + b"\\n")
for _ in range(5):
    pair = project.next_pair("bot")
    mark("VOTE"); project.vote(pair.pair_id, "left", "bot"); mark("DONE")
pair = project.next_pair("bot")
mark("SKIP"); project.skip(pair.pair_id, "bot"); mark("DONE")
mark("UNDO"); project.undo("bot"); mark("DONE")
"""


def _wal_syncs_per_step(trace: str) -> list[tuple[str, int]]:
    """(step, fsyncs of the WAL file) in order; 'next' is the stretch between DONE and a step."""
    steps, current, syncs = [], "setup", 0
    for line in trace.splitlines():
        if ("fsync(" in line or "fdatasync(" in line) and "-wal>" in line:
            syncs += 1
        elif " write(1<" in f" {line}":
            word = next((w for w in ("VOTE", "SKIP", "UNDO", "DONE") if f'"{w}' in line), None)
            if word is not None:
                steps.append((current, syncs))
                current, syncs = ("next" if word == "DONE" else word), 0
    return steps


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count fsyncs")
def test_votes_skips_and_undo_are_fsynced_open_pairs_are_not(tmp_path):
    """A vote is on disk (fsynced) before it is acknowledged; handing out a pair is not."""
    root = Path(__file__).resolve().parents[2]
    log = tmp_path / "trace.txt"
    done = subprocess.run(
        ["strace", "-f", "-y", "-o", str(log), "-e", "trace=fsync,fdatasync,write"]
        + [sys.executable, "-c", SYNC_PROBE, str(tmp_path / "studio.db")],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    steps = _wal_syncs_per_step(log.read_text())
    answered = [n for step, n in steps if step in ("VOTE", "SKIP", "UNDO")]
    handed_out = [n for step, n in steps if step == "next"]
    assert len(answered) == 7 and all(n >= 1 for n in answered), steps
    assert len(handed_out) == 6 and all(n == 0 for n in handed_out), steps
