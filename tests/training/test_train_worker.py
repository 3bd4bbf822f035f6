"""Background runs: one at a time, visible through files, stoppable and resumable."""

from __future__ import annotations

import json
import time

import pytest

from tests.training.test_train_loop import config
from training.worker import RunBusyError, RunManager


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_run_stop_resume_in_a_background_process(quality_json, tiny_base, tmp_path):
    manager = RunManager(tmp_path / "runs")
    assert manager.snapshot() == {} and manager.active() is None
    steps = 200
    cfg = config(quality_json, "ignored", tiny_base, batch_size=4, device_batch_size=4,
                 total_samples=4 * steps, robustness_images=2)  # fmt: skip
    name = manager.start(cfg, "first")
    assert manager.active() == "first"
    with pytest.raises(RunBusyError, match="first"):
        manager.start(cfg, "second")
    # A second manager (another session, or the app after a restart) sees the same run.
    other = RunManager(tmp_path / "runs")
    assert wait_for(lambda: other.snapshot()["status"].get("state") == "training")
    assert other.stop() is True
    status = manager.wait(name, timeout=60)
    assert status["state"] == "stopped", manager.snapshot(name)["log"][-2000:]
    stopped_at = status["step"]
    assert 0 < stopped_at < steps
    snap = other.snapshot(name)
    assert snap["active"] is False and snap["train"][-1]["step"] == stopped_at
    assert snap["data"]["train_pairs"] == 48 and snap["status"]["total_steps"] == steps
    assert (tmp_path / "runs" / "first" / "checkpoints").is_dir()

    manager.resume(name)
    status = manager.wait(name, timeout=90)
    assert status["state"] == "finished", manager.snapshot(name)["log"][-2000:]
    metrics = json.loads((tmp_path / "runs/first/final/metrics.json").read_text())
    assert metrics["steps"] == steps
    assert "resumed from" in manager.snapshot(name)["log"]
    assert manager.runs() == ["first"]


def test_a_dead_process_is_reported(tmp_path):
    manager = RunManager(tmp_path / "runs")
    files = manager.files("ghost")
    files.write_status(state="training", step=3)
    (tmp_path / "runs" / "active.json").write_text(json.dumps({"run": "ghost", "pid": 999999}))
    assert manager.active() is None
    assert files.read_status()["state"] == "failed"
    assert "exited unexpectedly" in files.read_status()["message"]
    assert manager.stop() is False
