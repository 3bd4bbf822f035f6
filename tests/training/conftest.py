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
