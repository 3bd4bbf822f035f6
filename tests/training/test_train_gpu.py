"""The 24 GB target on a real GPU: full fine-tuning of so400m-512 at 4 pairs per device."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_full_finetune_of_so400m_fits_24_gb():
    from bench.train_bench import parse_args, run

    result = run(parse_args(["--device", "cuda", "--arch", "so400m", "--device-batch-size", "4",
                             "--accumulation", "2", "--steps", "3", "--warmup-steps", "1"]))  # fmt: skip
    assert result["peak_memory_gib"] < 22.0, result
    assert result["pairs_per_second"] > 0
