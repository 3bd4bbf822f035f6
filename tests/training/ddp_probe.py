"""Run by the multi-process test under ``accelerate launch``: train, and record what this
rank saw (a digest of its training data and of every micro-batch it trained on).

Usage: ``accelerate launch --cpu --num_processes N tests/training/ddp_probe.py CONFIG OUT_DIR``
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from accelerate import PartialState  # noqa: E402

import training.loop as loop  # noqa: E402
from training.config import TrainConfig  # noqa: E402


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes() if hasattr(a, "tobytes") else repr(a).encode())
    return h.hexdigest()[:16]


def main(config_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    config = TrainConfig.load(config_path)
    seen: dict = {"data": None, "batches": []}
    real_step, real_dataset = loop.train_step, loop.PairDataset

    def recording_step(model, batch, *args, **kwargs):
        seen["batches"].append(
            digest(batch["a"].numpy(), batch["b"].numpy(), batch["label"].numpy())
        )
        return real_step(model, batch, *args, **kwargs)

    class RecordingDataset(real_dataset):
        def __init__(self, sources, keys, pairs, size):
            super().__init__(sources, keys, pairs, size)
            seen["data"] = digest(pairs.a, pairs.b, pairs.label, list(keys))

    loop.train_step, loop.PairDataset = recording_step, RecordingDataset
    result = loop.train(config)
    seen["steps"] = result.steps
    rank = PartialState().process_index  # after train(): its Accelerator set the state up
    seen["processes"] = PartialState().num_processes
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
