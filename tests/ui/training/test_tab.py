"""The Training tab through its named API on a launched app, as a script would use it."""

from __future__ import annotations

import time

import pytest
from gradio_client import Client

from tests.conftest import launch_app
from training.config import ConfigError
from ui.context import StudioContext

TINY = dict(robustness_images=2, train_mode="full", batch_size=8, device_batch_size=8, total_samples=160,
            test_every=80, learning_rate=0.003, lr_scheduler="cosine", warmup_samples=16,
            cpu_threads=1)  # fmt: skip


@pytest.fixture
def studio_ctx(tmp_path, quality_json, tiny_base):
    roots = [quality_json.parent.resolve(), tiny_base.resolve()]
    return StudioContext(data_dir=tmp_path / "data", allowed_roots=roots, sound_enabled=False)


def poll_until(client, run, states, timeout=90.0) -> dict:
    deadline, view = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        view = client.predict(run, api_name="/training_poll")
        if view["state"] in states:
            return view
        time.sleep(0.3)
    raise AssertionError(f"run {run} never reached {states}: {view.get('log', '')[-2000:]}")


@pytest.mark.slow
def test_start_stop_resume_through_the_api(studio_ctx, quality_json, tiny_base):
    demo, url = launch_app(studio_ctx, tabs=("Training",))
    try:
        client = Client(url, verbose=False)
        idle = client.predict(api_name="/training_poll")
        assert idle["state"] == "idle" and idle["run"] is None
        from ui.training.tab import _frames

        assert all(f.empty for f in _frames(idle))  # the page before any run
        from ui.training.tab import _status_html

        assert "No run yet" in _status_html(idle) and "0/0" not in _status_html(idle)
        args = ("json", str(quality_json), str(tiny_base), "custom", TINY, "api-run")
        assert client.predict(*args, api_name="/training_start")["run"] == "api-run"
        with pytest.raises(Exception, match="still in progress"):
            client.predict(*args[:-1], "other", api_name="/training_start")
        # Stopped while it starts up: it stops after its first step, with a checkpoint.
        assert client.predict(api_name="/training_stop") == {"stopping": True}
        view = poll_until(client, "api-run", ("stopped", "failed", "finished"))
        assert view["state"] == "stopped" and view["step"] == 1, view["log"][-2000:]
        # Starting the same run name again resumes it to the end.
        client.predict(*args, api_name="/training_start")
        view = poll_until(client, "api-run", ("stopped", "failed", "finished"))
        assert view["state"] == "finished", view["log"][-2000:]
        assert "resumed from" in view["log"]
        assert view["progress"] == 1.0 and view["total_steps"] == 20
        assert [e["step"] for e in view["eval"]] == [0, 10, 20]
        assert {"accuracy", "nll", "spearman", "jpeg_accuracy"} <= set(view["eval"][-1])
        assert [t["step"] for t in view["train"]] == list(range(1, 21))
        assert view["final_dir"].endswith("api-run/final")
        assert client.predict(api_name="/training_stop") == {"stopping": False}
        # The page's own view of the same run (what the timer shows after a refresh).
        from ui.training.tab import _desk, _frames, _status_html

        page_view = _desk(studio_ctx).poll()
        loss, acc, table = _frames(page_view)
        assert set(loss["series"]) == {"train", "test"} and len(table) == 3
        assert "api-run" in _status_html(page_view) and "100%" in _status_html(page_view)
    finally:
        demo.close()


def test_paths_outside_the_readable_folders_are_refused(studio_ctx, tmp_path):
    from ui.training.tab import _desk

    desk = _desk(studio_ctx)
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    with pytest.raises(ConfigError, match="outside the folders"):
        desk.build_config({"source": "json", "data": str(outside)})
    with pytest.raises(ConfigError, match="choose the training data"):
        desk.build_config({"source": "json", "data": ""})
    with pytest.raises(ConfigError, match="not a valid int"):
        desk.build_config({"source": "project", "data": "p", "batch_size": "many"})
    cfg = desk.build_config({"source": "project", "data": "p", "preset": "full"})
    assert cfg.data_kind == "project" and cfg.studio_db == str(studio_ctx.db_path)
    assert cfg.lr_scheduler == "cosine" and cfg.train_mode == "full"


def test_zero_gpu_space_says_training_needs_a_dedicated_gpu(studio_ctx, monkeypatch):
    from ui.training.tab import _desk

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    with pytest.raises(ConfigError, match="dedicated GPU"):
        _desk(studio_ctx).start({"source": "project", "data": "p"})
    import app

    saved = app.TABS
    app.TABS = tuple(t for t in saved if t[0] == "Training")
    try:
        demo = app.build_demo(studio_ctx)
    finally:
        app.TABS = saved
    texts = [getattr(b, "value", "") or "" for b in demo.blocks.values()]
    assert any("needs a dedicated GPU" in str(t) for t in texts)
