"""Background runs: one at a time, reported through files, failures noticed."""

from __future__ import annotations

import json

from tests.training.test_train_loop import config
from training.worker import RunManager


def test_a_failing_run_reports_its_error(tiny_base, tmp_path):
    manager = RunManager(tmp_path / "runs")
    assert manager.snapshot() == {} and manager.active() is None
    cfg = config(tmp_path / "missing.json", "ignored", tiny_base)
    name = manager.start(cfg, "broken")
    status = RunManager(tmp_path / "runs").wait(name, timeout=60)  # another session's view
    assert status["state"] == "failed" and "no such JSON file" in status["message"]
    snap = manager.snapshot()
    assert snap["run"] == "broken" and not snap["active"]
    assert "no such JSON file" in snap["log"]
    assert manager.runs() == ["broken"]


def test_a_dead_process_is_reported(tmp_path):
    manager = RunManager(tmp_path / "runs")
    files = manager.files("ghost")
    files.write_status(state="training", step=3)
    (tmp_path / "runs" / "active.json").write_text(json.dumps({"run": "ghost", "pid": 999999}))
    assert manager.active() is None
    assert files.read_status()["state"] == "failed"
    assert "exited unexpectedly" in files.read_status()["message"]
    assert manager.stop() is False


def test_thin_keeps_the_last_point_and_run_names_are_checked(tmp_path):
    import pytest

    from training.worker import UnknownRunError
    from ui.training.desk import thin

    rows = list(range(1001))
    out = thin(rows, 100)
    assert len(out) <= 101 and out[0] == 0 and out[-1] == 1000
    assert thin(rows[:5], 100) == rows[:5]
    with pytest.raises(UnknownRunError, match="no run named"):
        RunManager(tmp_path).files("../escape")
