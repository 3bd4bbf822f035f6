"""The model in the loop's three app pieces with real parts (a tiny SigLIP saved to a
folder and loaded back, generated images, a real project database):

- a project's online head exported as a model folder scores like the head, in a fresh
  load, through ``score_images`` and the sharded ``python -m model.score``;
- ``python -m model.score --embeddings`` fills the cache attaching reads: attaching
  afterwards never runs the backbone;
- images added to an attached project get their embeddings on intake (the ranker CLI
  and the model layer's hook), or wait, named, when the model cannot be loaded.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from model import score as score_cli
from model.head_export import export_head
from model.joyquality import build_tiny_model, load_model
from model.named import exported_heads
from model.project_loop import attach_model, embed_on_intake
from model.scoring import score_images
from ranker import cli as rank_cli
from ranker.attached import PrequentialLoop
from ranker.errors import StudioError
from ranker.service import Studio
from tests.ui.helpers import make_images


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny JoyQuality saved as a model folder (hidden size 8, 32 px)."""
    folder = build_tiny_model(seed=3).save_pretrained(tmp_path_factory.mktemp("m") / "base")
    return folder


def _project(tmp_path, n: int, name: str = "p"):
    studio = Studio(tmp_path / "data" / "studio.db")
    project = studio.create_project(name)
    project.add_files(make_images(tmp_path / "imgs", n))
    return studio, project


def _vote_by_position(project, n_votes: int) -> None:
    """A labeler who prefers the image added first (a taste the head can learn)."""
    for _ in range(n_votes):
        m = project.next_pair("alice")
        i, j = project.index[m.left.uid], project.index[m.right.uid]
        project.vote(m.pair_id, "left" if i < j else "right", "alice")


@pytest.mark.parametrize("n", [6, 12])  # 6: principal axes fewer than dims; 12: all dims
def test_exported_head_scores_like_the_online_head_in_a_fresh_load(base, tmp_path, n):
    studio, project = _project(tmp_path, n)
    model = load_model(base, device="cpu")
    data_dir = tmp_path / "data"
    attach_model(project, model, str(base), data_dir, "tiny")
    _vote_by_position(project, 8)
    head = project.online_head()
    assert head.votes == 8
    done = export_head(project, model, data_dir / "models")
    assert done["name"] == "head: p" and done["votes"] == 8

    folder = exported_heads(data_dir / "models")["head: p"]
    assert not (folder / "calibration.json").exists()
    fresh = load_model(folder, device="cpu")  # a new process would see exactly this
    paths = [img.path for img in project.images]
    scored = np.array([r["score"] for r in score_images(fresh, paths, num_workers=0)])
    # the head's own scores (offsets left out) on the project's images, no affine map
    np.testing.assert_allclose(scored, head.scores, rtol=1e-4, atol=1e-4)
    assert not np.allclose(head.scores, project.stored_features().base_scores, atol=1e-3)
    # the backbone is the attached model's, unchanged
    for key, value in model.vision_model.state_dict().items():
        assert torch.equal(fresh.vision_model.state_dict()[key], value), key

    out = tmp_path / "scores.parquet"  # the sharded scorer loads it unchanged
    argv = [str(tmp_path / "imgs"), "--out", str(out), "--model", str(folder),
            "--device", "cpu", "--workers", "0", "-q"]  # fmt: skip
    assert score_cli.main(argv) == 0
    table = pd.read_parquet(out).set_index("path")
    np.testing.assert_allclose(table.loc[[str(p) for p in paths], "score"], scored, atol=1e-5)
    studio.close()


def test_export_refuses_a_project_without_a_running_head(base, tmp_path):
    studio, project = _project(tmp_path, 4)
    model = load_model(base, device="cpu")
    with pytest.raises(ValueError, match="no model attached"):
        export_head(project, model, tmp_path / "models")
    attach_model(project, model, str(base), tmp_path / "data", "tiny")
    other = build_tiny_model(seed=4)  # not the attached backbone
    with pytest.raises(ValueError, match="not the one attached"):
        export_head(project, other, tmp_path / "models")
    project.add_files(make_images(tmp_path / "more", 1, size=(33, 33)))  # waits for features
    with pytest.raises(StudioError, match="not running"):
        export_head(project, model, tmp_path / "models")
    studio.close()


def test_score_with_embeddings_then_attach_never_runs_the_backbone(base, tmp_path):
    images = make_images(tmp_path / "imgs", 10)
    cache_dir = tmp_path / "data" / "embeddings"  # the app's cache under its data folder
    out = tmp_path / "scores.parquet"
    argv = [str(tmp_path / "imgs"), "--out", str(out), "--model", str(base), "--device", "cpu",
            "--workers", "0", "--chunk-size", "4", "--embeddings", str(cache_dir), "-q"]  # fmt: skip
    assert score_cli.main(argv) == 0
    table = pd.read_parquet(out).set_index("path")

    copies = tmp_path / "copies"  # the same pictures, elsewhere: keyed by their bytes
    shutil.copytree(tmp_path / "imgs", copies)
    studio = Studio(tmp_path / "data" / "studio.db")
    project = studio.create_project("big")
    project.add_folder(copies)
    model = load_model(base, device="cpu")
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model, "pooled", lambda *a: calls.append(1) or torch.zeros(0))
        info = attach_model(project, model, str(base), tmp_path / "data", "tiny")
    assert calls == [] and info["images"] == 10
    assert isinstance(project.selector, PrequentialLoop)
    # the cached vectors are the backbone's, and the scores the head's on them
    stored = project.stored_features()
    from model.embeddings import embed_images

    direct = embed_images(model, [img.path for img in project.images]).numpy()
    np.testing.assert_allclose(stored.embeddings, direct, atol=1e-5)
    by_name = {p.name: float(table.loc[str(p), "score"]) for p in images}
    np.testing.assert_allclose(
        stored.base_scores, [by_name[img.name] for img in project.images], atol=1e-5
    )
    # a rerun of another job into the same parts is refused, not silently mixed
    with pytest.raises(ValueError, match="different job"):
        from model.shards import check_manifest, parts_dir_for

        check_manifest(parts_dir_for(out), {"input": "x", "chunk_size": 4, "model": str(base)})
    studio.close()


def test_fast_decode_cannot_fill_the_embedding_cache(base, tmp_path):
    make_images(tmp_path / "imgs", 2)
    argv = [str(tmp_path / "imgs"), "--out", str(tmp_path / "s.parquet"), "--model", str(base),
            "--device", "cpu", "--workers", "0", "--fast-decode", "--embeddings",
            str(tmp_path / "emb"), "-q"]  # fmt: skip
    assert score_cli.main(argv) == 2
    assert not (tmp_path / "emb").exists() or not any((tmp_path / "emb").rglob("*.npy"))


def test_new_images_get_embeddings_on_intake_through_the_cli(base, tmp_path, capsys):
    studio, project = _project(tmp_path, 5)
    model = load_model(base, device="cpu")
    attach_model(project, model, str(base), tmp_path / "data", "tiny")
    studio.close()
    db = str(tmp_path / "data" / "studio.db")
    make_images(tmp_path / "new", 2, size=(36, 28))
    assert rank_cli.main(["--db", db, "add", "p", str(tmp_path / "new")]) == 0
    assert "embedded 2 new images with the attached model tiny" in capsys.readouterr().out
    studio = Studio(db)
    project = studio.project("p")
    assert project.images_without_features() == [] and len(project.images) == 7
    assert isinstance(project.selector, PrequentialLoop)
    assert project.model_status().ready
    studio.close()


def test_images_wait_named_when_the_model_cannot_be_loaded(base, tmp_path, capsys):
    gone = tmp_path / "gone"
    shutil.copytree(base, gone)
    studio, project = _project(tmp_path, 5)
    attach_model(project, load_model(gone, device="cpu"), str(gone), tmp_path / "data", "tiny")
    shutil.rmtree(gone)  # the model's folder is gone (or offline and not cached)
    added = make_images(tmp_path / "new", 2, size=(36, 28))
    project.add_files(added)
    done = embed_on_intake(project, tmp_path / "data")
    assert done.embedded == 0 and done.waiting == ("img000.png", "img001.png")
    assert "2 new images wait for embeddings" in done.summary() and done.reason
    status = project.model_status()
    assert not status.ready and status.missing == 2
    assert status.waiting == ("img000.png", "img001.png")
    from ui.ranking.model_panel import status_markdown

    assert "img000.png, img001.png" in status_markdown(status)
    # the project keeps working with its own strategy meanwhile
    assert not isinstance(project.selector, PrequentialLoop)
    _vote_by_position(project, 3)
    assert project.progress().votes == 3
    studio.close()
    db = str(tmp_path / "data" / "studio.db")
    make_images(tmp_path / "more", 1, size=(20, 50))
    assert rank_cli.main(["--db", db, "add", "p", str(tmp_path / "more")]) == 0
    assert "3 new images wait for embeddings" in capsys.readouterr().out
