"""The loop's guarantees, on CPU with a tiny model: updates, accumulation, resume, export."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from model.joyquality import build_tiny_model, load_model
from model.preprocess import batch_pixel_values
from model.scoring import score_images
from tests.training.helpers import make_quality_task
from training.config import TrainConfig
from training.data import read_json_pairs
from training.loop import RunError, train


def config(data, out, base, **overrides) -> TrainConfig:
    values = dict(
        data=str(data),
        output_dir=str(out),
        base_model=str(base),
        train_mode="full",
        gradient_checkpointing=False,
        lr_scheduler="constant",
        learning_rate=1e-2,
        weight_decay=0.0,
        batch_size=8,
        device_batch_size=8,
        total_samples=8,
        test_every=0,
        eval_at_start=False,
        checkpoint_every=0,
        num_workers=0,
        robustness_images=4,
        report_to="none",
        cpu_threads=1,
    )
    values.update(overrides)
    return TrainConfig(**values)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.parametrize("mode", ["full", "head"])
def test_one_step_changes_exactly_the_trainable_parameters(quality_json, tiny_base, tmp_path, mode):
    model = build_tiny_model(seed=1)
    before = params(model)
    train(config(quality_json, tmp_path / "run", tiny_base, train_mode=mode), model=model)
    after = params(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # The head bias cancels in s_a - s_b: it has no gradient and stays frozen.
    if mode == "full":
        assert changed == set(before) - {"classifier.bias"}
    else:
        assert changed == {"classifier.weight"}


def test_accumulation_matches_one_big_batch(quality_json, tiny_base, tmp_path):
    # A large Adam eps makes the first update proportional to the gradient (plain Adam
    # would normalise a wrongly scaled gradient away), and clipping is off for the same reason.
    common = dict(adam_eps=1.0, max_grad_norm=0.0, learning_rate=0.5)
    big, small = build_tiny_model(seed=2), build_tiny_model(seed=2)
    train(config(quality_json, tmp_path / "big", tiny_base, **common), model=big)
    train(
        config(quality_json, tmp_path / "acc", tiny_base, device_batch_size=2, **common),
        model=small,
    )
    start = params(build_tiny_model(seed=2))
    for (name, a), b in zip(big.named_parameters(), small.parameters(), strict=True):
        assert name == "classifier.bias" or not torch.equal(a, start[name])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_interrupt_and_resume_gives_the_same_weights(quality_json, tiny_base, tmp_path):
    kw = dict(
        total_samples=48,
        batch_size=8,
        device_batch_size=4,
        lr_scheduler="onecycle",
        warmup_samples=16,
        learning_rate=5e-3,
        weight_decay=0.01,
        test_every=16,
    )
    straight = train(config(quality_json, tmp_path / "straight", tiny_base, **kw))
    stopped = train(
        config(quality_json, tmp_path / "resumed", tiny_base, **kw), should_stop=lambda s: s == 3
    )
    assert stopped.stopped and stopped.final_dir is None and stopped.steps == 3
    resumed = train(config(quality_json, tmp_path / "resumed", tiny_base, **kw))
    assert resumed.resumed_from == 3 and resumed.steps == 6
    a = load_model(straight.final_dir, device="cpu").state_dict()
    b = load_model(resumed.final_dir, device="cpu").state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history]
    assert resumed.metrics["accuracy"] == straight.metrics["accuracy"]


def test_the_best_checkpoint_survives_a_resume(quality_json, tiny_base, tmp_path):
    # A step size this large makes the test loss worse than the base model's: the best
    # evaluation is the one before any training, and the run stops and resumes after it.
    kw = dict(total_samples=48, learning_rate=3.0, test_every=16, eval_at_start=True,
              checkpoint_every=8)  # fmt: skip
    straight = train(config(quality_json, tmp_path / "straight", tiny_base, **kw))
    assert straight.best_step == 0 < straight.steps  # the case under test really happens
    stopped = train(
        config(quality_json, tmp_path / "resumed", tiny_base, **kw), should_stop=lambda s: s == 3
    )
    assert stopped.stopped and (tmp_path / "resumed" / "best" / "best.json").is_file()
    resumed = train(config(quality_json, tmp_path / "resumed", tiny_base, **kw))
    assert resumed.resumed_from == 3 and resumed.best_step == 0
    assert resumed.metrics["nll"] == straight.metrics["nll"] == straight.history[0]["nll"]
    base = load_model(tiny_base, device="cpu").state_dict()
    kept = load_model(resumed.final_dir, device="cpu").state_dict()
    for key in base:
        assert torch.equal(base[key], kept[key]), key


def test_resume_refuses_other_settings(quality_json, tiny_base, tmp_path):
    cfg = config(quality_json, tmp_path / "run", tiny_base, total_samples=32)
    train(cfg, should_stop=lambda s: s == 1)
    cfg.learning_rate = 0.5
    with pytest.raises(RunError, match="learning_rate"):
        train(cfg)


def test_final_model_scores_identically_in_the_scoring_path(quality_json, tiny_base, tmp_path):
    cfg = config(quality_json, tmp_path / "run", tiny_base, total_samples=16)
    model = build_tiny_model(seed=3)
    result = train(cfg, model=model)
    data = read_json_pairs(quality_json)
    paths = [data.sources[i] for i in data.test_images()]
    pixels = batch_pixel_values(paths, 32)
    with torch.no_grad():
        expected = model.eval()(pixels)
        reloaded = load_model(result.final_dir, device="cpu")
        got = reloaded(pixels)
    assert torch.equal(expected, got)
    # The Scoring tab's path: its own loader and batching, the saved calibration's buckets.
    rows = score_images(reloaded, paths, num_workers=0, batch_size=5)
    scores = torch.tensor([r["score"] for r in rows])
    torch.testing.assert_close(scores, expected, rtol=1e-6, atol=1e-6)
    assert all(r["bucket"] in reloaded.calibration.labels and r["error"] is None for r in rows)
    assert reloaded.calibration is not None and reloaded.calibration.tau > 0
    saved = json.loads((result.final_dir / "config.json").read_text())
    assert saved["architectures"] == ["SiglipForImageClassification"]
    card = (result.final_dir / "README.md").read_text()
    assert "base_model: " in card and "| accuracy |" in card
    assert TrainConfig.load(result.final_dir) == cfg


def test_generated_quality_task_reaches_95_percent_quickly(tmp_path, tiny_base):
    data = make_quality_task(tmp_path / "data", n_train=48, n_test=24, seed=5)
    cfg = config(
        data,
        tmp_path / "run",
        tiny_base,
        lr_scheduler="cosine",
        learning_rate=3e-3,
        # transformers' warm-up starts at lr 0, so on a 40-step run any warm-up costs
        # whole steps; this recipe reaches the target without one.
        warmup_samples=0,
        batch_size=16,
        total_samples=640,
        test_every=320,
        robustness_images=8,
    )
    began = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - began
    assert result.metrics["accuracy"] >= 0.95, result.history
    assert seconds < 60
    assert {"nll", "brier", "ece", "aurc", "spearman", "kendall", "jpeg_accuracy"} <= set(
        result.metrics
    )


def test_trackers_and_hub_push(quality_json, tiny_base, tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create", repo_id, kw["private"]))

        def upload_folder(self, folder_path, repo_id, **kw):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            calls.append(("upload", repo_id, files))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    cfg = config(quality_json, tmp_path / "run", tiny_base, total_samples=16,
                 report_to="tensorboard", push_to_hub="me/joyquality-mine")  # fmt: skip
    train(cfg)
    assert ("create", "me/joyquality-mine", True) in calls
    uploaded = next(c for c in calls if c[0] == "upload")[2]
    assert {"config.json", "model.safetensors", "calibration.json", "README.md"} <= set(uploaded)
    events = list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 200


def test_resume_after_a_crash_redoes_the_lost_steps_once(quality_json, tiny_base, tmp_path):
    from training.runfiles import RunFiles

    kw = dict(total_samples=48, batch_size=8, device_batch_size=8, checkpoint_every=16)
    cfg = config(quality_json, tmp_path / "run", tiny_base, **kw)
    with pytest.raises(KeyboardInterrupt):  # a crash after step 3; the checkpoint is step 2

        def crash(step: int) -> bool:
            if step == 3:
                raise KeyboardInterrupt
            return False

        train(cfg, should_stop=crash)
    files = RunFiles(cfg.output_dir)
    assert files.read_status()["state"] == "failed"
    assert [p.name for p in files.checkpoints()] == ["step_0000002"]
    result = train(cfg)
    assert result.resumed_from == 2 and result.final_dir is not None
    assert [e["step"] for e in files.read_events("train")] == [1, 2, 3, 4, 5, 6]
