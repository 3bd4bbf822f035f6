"""A small voted project for the dataset, hub and backup tests (no files committed)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ranker.service import ProjectSession, Studio
from tests.ranker.helpers import make_images


def voted_project(
    root: Path, n_images: int = 16, n_votes: int = 60, seed: int = 0, name: str = "demo"
) -> tuple[Studio, ProjectSession]:
    """``n_images`` generated PNGs and ``n_votes`` seeded random votes (ties included)."""
    studio = Studio(root / f"{name}.db")
    project = studio.create_project(name, "Which is sharper?")
    project.add_files(make_images(root / f"{name}-images", n_images))
    rng = random.Random(seed)
    uids = [img.uid for img in project.images]
    votes = []
    for k in range(n_votes):
        left, right = rng.sample(uids, 2)
        outcome = rng.choice(["left", "right", "left", "right", "tie"])
        labeler = rng.choice(["ann", "bob", "cy"])
        votes.append((None, left, right, outcome, labeler, 1_700_000_000.25 + k, 800.0 + k, "test"))
    project.record_votes(votes)
    return studio, project


def vote_tuples(project: ProjectSession, include_undone: bool = False) -> list[tuple]:
    """What must survive a round trip: pair as shown, outcome, labeler, time, answer time."""
    return [
        (v.left_uid, v.right_uid, v.outcome, v.labeler, v.created_at, v.response_ms, v.undone)
        for v in project.votes(include_undone)
    ]


def ratings(project: ProjectSession) -> list[tuple]:
    return [
        (
            r["uid"],
            r["mu"],
            r["sigma"],
            r["wins"],
            r["losses"],
            r["ties"],
            r["excluded"],
            r["exclusion_reason"],
        )
        for r in project.leaderboard("conservative")
    ]


@pytest.fixture
def offline_hub(monkeypatch):
    """No Hub access and no token, whatever the machine has configured."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
