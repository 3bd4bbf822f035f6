"""A process killed while voting leaves a consistent database with every acknowledged vote."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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
