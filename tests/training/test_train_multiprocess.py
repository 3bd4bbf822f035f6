"""Two CPU processes (torchrun + accelerate's MULTI_CPU, gloo) train on the same data as one process,
split the batches between them, and end with the one-process run's weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1].parent
PROBE = ROOT / "tests" / "training" / "ddp_probe.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, config: TrainConfig, out: Path) -> list[dict]:
    out.mkdir(parents=True)
    config.save(out)
    # torchrun sets RANK/WORLD_SIZE; Accelerator(cpu=True) then joins a gloo group
    # (``accelerate launch --cpu`` without a multi-CPU config starts one process only).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(PROBE), str(out), str(out)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)]


@pytest.mark.timeout(600)
def test_two_processes_see_the_same_data_and_end_with_the_same_weights(
    quality_json, tiny_base, tmp_path
):
    def config(name: str) -> TrainConfig:
        return TrainConfig(
            data=str(quality_json), base_model=str(tiny_base), output_dir=str(tmp_path / name / "run"),
            train_mode="full", gradient_checkpointing=False, lr_scheduler="cosine",
            learning_rate=3e-3, warmup_samples=0, batch_size=8, device_batch_size=4,
            total_samples=32, test_every=0, eval_at_start=False, checkpoint_every=0,
            robustness_images=0, report_to="none", num_workers=0, cpu=True, seed=3,
        )  # fmt: skip

    (single,) = launch(1, config("one"), tmp_path / "one")
    ranks = launch(2, config("two"), tmp_path / "two")
    assert single["steps"] == 4 and all(r["steps"] == 4 for r in ranks)
    assert single["processes"] == 1 and all(r["processes"] == 2 for r in ranks)
    # The same data on every rank, and the same as one process read.
    assert ranks[0]["data"] == ranks[1]["data"] == single["data"]
    # One process does 2 micro-batches of 4 pairs per step; two processes do one each.
    assert len(single["batches"]) == 8 and all(len(r["batches"]) == 4 for r in ranks)
    assert ranks[0]["batches"] == single["batches"][0::2]
    assert ranks[1]["batches"] == single["batches"][1::2]
    one = load_file(str(tmp_path / "one" / "run" / "final" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "run" / "final" / "model.safetensors"))
    assert one.keys() == two.keys()
    changed = 0
    base = load_file(str(tiny_base / "model.safetensors"))
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
        changed += not torch.equal(one[key], base[key])
    assert changed > 10  # the runs trained (the comparison is not of two untouched copies)
