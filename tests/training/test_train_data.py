"""Data sources (JSON, published dataset, ranking project), config, and bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ranker.service import Studio
from tests.training.helpers import make_quality_task
from tests.training.test_train_loop import config
from training.config import ConfigError, TrainConfig, apply_preset
from training.data import HUMAN_RANKING_BT, DataError, read_json_pairs
from training.loop import train
from training.runfiles import RunFiles
from training.sources import read_dataset, snapshot_project


def write_json(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_json_pairs_resolve_relative_paths_and_labels(quality_json):
    data = read_json_pairs(quality_json)
    assert len(data.train) == 48 and len(data.test) == 16
    assert set(np.unique(data.train.label)) <= {0.0, 1.0}
    assert all(src.startswith(str(quality_json.parent)) for src in data.sources)
    assert data.overlap() == 0
    assert data.ranking_name == HUMAN_RANKING_BT
    assert set(data.human) == set(data.test_images().tolist())
    # Bradley-Terry ranks every clean test image above every damaged one here.
    clean = [data.human[i] for i in data.human if data.keys[i].endswith("_clean.png")]
    bad = [data.human[i] for i in data.human if data.keys[i].endswith("_bad.png")]
    assert min(clean) > max(bad)


def test_json_ties_are_soft_labels(quality_json):
    doc = json.loads(quality_json.read_text())
    doc["train"][0][2] = 0.5
    data = read_json_pairs(write_json(quality_json.parent / "ties.json", doc))
    assert data.train.label[0] == 0.5
    assert data.summary()["train_tie_share"] == pytest.approx(1 / 48, abs=1e-4)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"train": [], "test": []}, "training split has no pairs"),
        ({"train": [["a.png", "b.png", 1]]}, "expected"),
        ({"train": [["a.png"]], "test": []}, r"expected \[winner_path"),
        ({"train": [["a.png", "b.png", 2]], "test": []}, "must be 1"),
        ({"train": [["a.png", "b.png", "x"]], "test": []}, "not a number"),
    ],
)
def test_bad_json_is_rejected_clearly(tmp_path, doc, match):
    with pytest.raises(DataError, match=match):
        read_json_pairs(write_json(tmp_path / "bad.json", doc))


def test_missing_files_are_named(quality_json, tmp_path):
    doc = json.loads(quality_json.read_text())
    doc["train"][0][0] = "nowhere/gone.png"
    path = write_json(quality_json.parent / "missing.json", doc)
    with pytest.raises(DataError, match=r"1 image file\(s\) not found: .*gone.png"):
        read_json_pairs(path)


def test_empty_test_split_is_an_error(quality_json, tmp_path):
    doc = json.loads(quality_json.read_text())
    path = write_json(quality_json.parent / "notest.json", {**doc, "test": []})
    with pytest.raises(DataError, match="test split has no pairs"):
        read_json_pairs(path)


@pytest.mark.parametrize(
    ("name", "setup", "error", "match"),
    [
        ("empty", lambda d, b, t: (write_json(t / "e.json", {"train": [], "test": []}), b),
         DataError, "no pairs"),
        ("missing", lambda d, b, t: (write_json(t / "m.json", {
            "train": [["x.png", "y.png", 1]], "test": [["x.png", "y.png", 1]]}), b),
         DataError, "not found"),
        ("not siglip", lambda d, b, t: (d, _bert_folder(t)), ValueError, "model_type is 'bert'"),
    ],
)  # fmt: skip
def test_bad_input_fails_before_training(
    quality_json, tiny_base, tmp_path, name, setup, error, match
):
    data, base = setup(quality_json, tiny_base, tmp_path)
    cfg = config(data, tmp_path / "run", base)
    with pytest.raises(error, match=match):
        train(cfg)
    files = RunFiles(cfg.output_dir)
    assert files.read_status()["state"] == "failed"
    assert (
        match.split("'")[0].strip() in files.read_status()["message"]
        or files.read_status()["error"]
    )
    assert not files.checkpoints() and not files.final_dir.exists()
    assert not files.read_events("train")


def _bert_folder(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    save_file(
        {"embeddings.word_embeddings.weight": torch.zeros(4, 8)}, str(folder / "model.safetensors")
    )
    return folder


def _labelled_project(tmp_path, n=24):
    folder = tmp_path / "imgs"
    make_quality_task(folder, n_train=n // 2, n_test=0)
    studio = Studio(tmp_path / "studio.db")
    project = studio.create_project("q")
    project.add_files(sorted(folder.glob("*.png")))
    for _ in range(160):
        pair = project.next_pair("tester")
        if pair is None:
            break
        left_clean = "clean" in pair.left.name
        right_clean = "clean" in pair.right.name
        outcome = "tie" if left_clean == right_clean else ("left" if left_clean else "right")
        project.vote(pair.pair_id, outcome, "tester")
    return studio


def test_published_dataset_and_project_sources(tmp_path, tiny_base):
    studio = _labelled_project(tmp_path)
    folder = snapshot_project(studio, "q", tmp_path / "published", test_fraction=0.3, seed=1)
    data = read_dataset(folder, rank_by="mu")
    assert len(data.train) and len(data.test)
    assert data.overlap() == 0  # the published split is by image
    assert data.ranking_name == "TrueSkill mu of the test images"
    assert 0.5 in set(data.train.label.tolist())  # ties kept as soft labels
    from training.batches import read_image

    assert read_image(data.sources[0], data.keys[0]).mode == "RGB"

    cfg = config("q", tmp_path / "run", tiny_base, data_kind="project", test_fraction=0.3,
                 robustness_images=2)  # fmt: skip
    result = train(cfg, studio=studio)
    assert result.final_dir is not None
    assert (tmp_path / "run" / "dataset" / "data").is_dir()  # the snapshot it trained on
    assert "spearman" in result.metrics


def test_unreachable_hub_dataset_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="could not be downloaded"):
        read_dataset("nobody/no-such-dataset")


def test_presets_and_config_round_trip(tmp_path):
    cfg = apply_preset(TrainConfig(data="x.json"), "personal")
    assert (cfg.train_mode, cfg.lr_scheduler, cfg.learning_rate) == ("head", "onecycle", 0.008)
    full = apply_preset(TrainConfig(data="x.json"), "full")
    assert (full.train_mode, full.lr_scheduler, full.learning_rate) == ("full", "cosine", 2e-5)
    assert full.warmup_samples > 0 and full.gradient_checkpointing
    cfg.save(tmp_path)
    assert TrainConfig.load(tmp_path) == cfg
    # Presets are sized to the data: upstream's ~6k personal pairs get its 20k samples
    # (about 3 passes), a 37-pair project a batch of its size and the 50-step minimum.
    assert cfg.sized_to_data and cfg.total_steps == 0
    upstream = cfg.sized_to(6_000)
    assert (upstream.batch_size, upstream.total_steps) == (256, 20_000 // 256)
    assert upstream.warmup_samples == 1_500 and upstream.sized_to(10) is upstream
    small = cfg.sized_to(37)
    assert (small.batch_size, small.total_steps, small.warmup_samples) == (36, 50, 180)
    fixed = dataclasses.replace(cfg, total_samples=512)
    assert fixed.sized_to(37) is fixed


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"data": ""}, "data is empty"),
        ({"batch_size": 10, "device_batch_size": 4}, "not a multiple"),
        ({"total_samples": 8, "batch_size": 16}, "less than one batch"),
        ({"lr_scheduler": "step"}, "lr_scheduler"),
        ({"train_mode": "lora"}, "train_mode"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_config_validation(change, match):
    values = {"data": "x.json", **change}
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**values).validate()
    with pytest.raises(ConfigError, match="unknown preset"):
        apply_preset(TrainConfig(), "huge")
    with pytest.raises(ConfigError, match="unknown settings"):
        TrainConfig.from_dict({"lr": 1})
