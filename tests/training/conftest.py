"""Shared fixtures: a generated quality task and a tiny base model on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import make_quality_task, save_tiny_base


@pytest.fixture(scope="session")
def quality_json(tmp_path_factory) -> Path:
    return make_quality_task(tmp_path_factory.mktemp("quality"), n_train=24, n_test=8)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    return save_tiny_base(tmp_path_factory.mktemp("base"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread (and far faster on a busy machine)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(autouse=True)
def embedding_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Head-only runs cache embeddings; keep them out of the user's ~/.cache."""
    monkeypatch.delenv("STUDIO_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
