"""The training CLI: options from the config dataclass, presets, exit codes."""

from __future__ import annotations

import json

from training.cli import build_parser, main, resolve_config
from training.config import TrainConfig


def test_options_follow_the_dataclass_and_presets_come_first():
    args = build_parser().parse_args(
        ["--data", "p.json", "--preset", "personal", "--learning-rate", "0.01", "--no-resume"]
    )
    cfg = resolve_config(args)
    assert cfg.learning_rate == 0.01  # explicit beats preset
    assert cfg.lr_scheduler == "onecycle" and cfg.train_mode == "head"  # from the preset
    assert cfg.resume is False and cfg.preset == "personal"


def test_config_file_then_options(tmp_path):
    TrainConfig(data="a.json", batch_size=32, device_batch_size=8).save(tmp_path)
    cfg = resolve_config(build_parser().parse_args(["--config", str(tmp_path), "--seed", "7"]))
    assert (cfg.data, cfg.batch_size, cfg.seed) == ("a.json", 32, 7)


def test_cli_trains_and_prints_a_summary(quality_json, tiny_base, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--data", str(quality_json), "--base-model", str(tiny_base), "--output-dir", str(out),
            "--batch-size", "8", "--device-batch-size", "4", "--total-samples", "16",
            "--num-workers", "0", "--robustness-images", "2", "--report-to", "none",
            "--train-mode", "full", "--no-gradient-checkpointing"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["final_dir"] == str(out / "final")
    assert TrainConfig.load(out).train_mode == "full"


def test_cli_check_and_bad_input(quality_json, tiny_base, tmp_path, capsys):
    assert main(["--data", str(quality_json), "--base-model", str(tiny_base), "--check"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["train_pairs"] == 48
    out = ["--output-dir", str(tmp_path / "run")]  # a failed run writes its status: not in the repo
    assert main(["--data", str(tmp_path / "none.json"), "--base-model", str(tiny_base), *out]) == 2
    assert "no such JSON file" in capsys.readouterr().err
    assert main(["--data", "x.json", "--batch-size", "10", "--device-batch-size", "4"]) == 2
