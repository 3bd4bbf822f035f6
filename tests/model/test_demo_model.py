"""The demo quality model: built offline, labelled, reused; offered when JoyQuality is absent."""

from __future__ import annotations

import pytest

from model import demo_model
from model.joyquality import load_model
from training.config import ConfigError
from ui.training.desk import TrainingDesk


@pytest.fixture
def quick(monkeypatch):
    """A few steps and pictures: the recipe's shape, not its accuracy."""
    monkeypatch.setattr(demo_model, "STEPS", 3)
    monkeypatch.setattr(demo_model, "VARIANTS", 1)


def test_demo_model_is_built_once_labelled_and_loads(tmp_path, quick):
    folder = demo_model.ensure_demo_model(tmp_path)
    assert demo_model.is_demo_model(folder)
    assert "not JoyQuality" in (folder / demo_model.README_NAME).read_text()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert demo_model.ensure_demo_model(tmp_path) == folder  # reused, not rebuilt
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    model = load_model(folder, device="cpu")
    assert model.image_size == demo_model.IMAGE_SIZE


def test_default_choice_is_the_demo_model_when_joyquality_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.setattr(demo_model, "hub_model_cached", lambda repo: False)
    source, why = demo_model.default_model_choice(tmp_path, "fancyfeast/joyquality")
    assert source == demo_model.DEMO_MODEL_NAME  # a name: forms never show server folders
    assert "offline mode is on" in why and "demo quality model" in why
    monkeypatch.setattr(demo_model, "hub_model_cached", lambda repo: True)
    assert demo_model.default_model_choice(tmp_path, "x/y") == ("x/y", "")


def test_offline_start_with_an_absent_hub_model_fails_before_starting(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(demo_model, "hub_model_cached", lambda repo: False)
    pairs = tmp_path / "pairs.json"
    pairs.write_text('{"train": [], "test": []}')
    desk = TrainingDesk(tmp_path / "runs", tmp_path / "studio.db", [tmp_path])
    with pytest.raises(ConfigError, match="offline mode is on.*demo quality model"):
        desk.start({"source": "json", "data": str(pairs), "base_model": "someone/absent"})
    assert desk.manager.runs() == []  # nothing was started
    with pytest.raises(ConfigError, match=r"outside the folders this server may read \(.*models\)"):
        desk.start({"source": "json", "data": "/etc/passwd"})
