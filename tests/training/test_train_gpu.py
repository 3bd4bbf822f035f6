"""The 24 GB target on a real GPU: a full fine-tune of so400m-512 through training.loop at
4 pairs per device, under a hard cap (``torch.cuda.set_per_process_memory_fraction``):
an allocation past 24 GB raises out-of-memory here as it would on a 24 GB card."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_full_finetune_of_so400m_fits_24_gb(tmp_path):
    from bench.gpu_check import parse_args, stage_finetune

    args = parse_args(["--device", "cuda", "--memory-cap-gb", "24", "--device-batch-size", "4",
                       "--train-steps", "3", "--out", str(tmp_path / "check.json")])  # fmt: skip
    try:
        result = stage_finetune(args, torch.device("cuda"), tmp_path)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert result["steps"] == 3 and result["saved"], result
    assert result["device_batch_pairs"] >= 4
    assert result["peak_reserved_gib"] * 2**30 <= 24e9, result
    assert result["pairs_per_s"] > 0
