"""Training-step benchmark: pairs per second and peak memory of the real train_step.

Runs :func:`training.loop.train_step` (one forward over the 2B images, BT loss,
accelerate accumulation, grad clip, AdamW) on random pixels, so it measures the model
step itself, not image decoding. The model is randomly initialised from its config, so
no download is needed: ``--arch so400m`` is the JoyQuality architecture (SigLIP 2
so400m/16 at 512 px, about 429 M parameters), ``--arch tiny`` the test model.

Usage:
    python bench/train_bench.py                               # CPU, tiny model
    python bench/train_bench.py --device cuda --arch so400m   # the 24 GB target check
    python bench/train_bench.py --device cuda --arch so400m --device-batch-size 8 \\
        --no-gradient-checkpointing --json bench/results/train_so400m.json

Head-only training on cached embeddings (what a run does in head mode) against the
full forward in the same run, same model, same micro-batches:
    python bench/train_bench.py --compare-cached --arch so400m --image-size 512 \
        --device-batch-size 2 --accumulation 1 --steps 2 --warmup-steps 1

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU, the process's peak RSS on
the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from accelerate import Accelerator  # noqa: E402

from model.joyquality import JoyQuality, so400m_config, tiny_config  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.loop import configure_model, train_step  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--arch", choices=("tiny", "so400m"), default="tiny")
    p.add_argument("--image-size", type=int, default=None, help="default: 32 tiny, 512 so400m")
    p.add_argument("--mode", choices=("full", "head"), default="full")
    p.add_argument("--device-batch-size", type=int, default=4, help="pairs per forward")
    p.add_argument("--accumulation", type=int, default=2, help="micro-batches per optimizer step")
    p.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed optimizer steps first")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--precision", choices=("auto", "bf16", "no"), default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument(
        "--compare-cached",
        action="store_true",
        help="head mode: full-forward steps vs cached-embedding steps, same run",
    )
    p.add_argument("--cached-steps", type=int, default=200, help="timed cached-embedding steps")
    p.add_argument("--json", help="also write the result here")
    return p.parse_args(argv)


def peak_memory_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run(args: argparse.Namespace) -> dict:
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible")
    if args.threads:
        torch.set_num_threads(args.threads)
    size = args.image_size or (32 if args.arch == "tiny" else 512)
    config = tiny_config(size) if args.arch == "tiny" else so400m_config(size)
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if args.device == "cuda" and torch.cuda.is_bf16_supported() else "no"
    accelerator = Accelerator(
        mixed_precision=precision,
        cpu=args.device == "cpu",
        gradient_accumulation_steps=args.accumulation,
    )
    torch.manual_seed(0)
    with torch.device(accelerator.device):
        model = JoyQuality(config)  # fp32 master weights; bf16 comes from autocast
    train_cfg = TrainConfig(
        data="bench", train_mode=args.mode, gradient_checkpointing=args.gradient_checkpointing
    )
    params = configure_model(model, train_cfg)
    optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    b = args.device_batch_size
    gen = torch.Generator(device="cpu").manual_seed(0)

    def batch() -> dict[str, torch.Tensor]:
        pixels = torch.randint(0, 256, (2, b, 3, size, size), dtype=torch.uint8, generator=gen)
        return {
            "a": pixels[0].to(accelerator.device),
            "b": pixels[1].to(accelerator.device),
            "label": torch.ones(b, device=accelerator.device),
        }

    hidden = config.vision_config.hidden_size

    def cached_batch() -> dict[str, torch.Tensor]:
        vectors = torch.randn(2, b, hidden, generator=gen).to(accelerator.device)
        return {"a": vectors[0], "b": vectors[1], "label": torch.ones(b, device=accelerator.device)}

    def optimizer_steps(n: int, make=batch) -> float:
        began = time.perf_counter()
        for _ in range(n * args.accumulation):
            train_step(model, make(), optimizer, accelerator, params, 1.0)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - began

    optimizer_steps(args.warmup_steps)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = optimizer_steps(args.steps)
    pairs = args.steps * args.accumulation * b
    extra = {}
    if args.compare_cached:
        optimizer_steps(10, cached_batch)
        cached = optimizer_steps(args.cached_steps, cached_batch) / args.cached_steps
        full = seconds / args.steps
        extra = {
            "full_forward_s_per_step": round(full, 5),
            "cached_s_per_step": round(cached, 7),
            "cached_speedup": round(full / cached, 1),
        }
    return {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "arch": args.arch,
        "image_size": size,
        "mode": args.mode,
        "gradient_checkpointing": args.gradient_checkpointing and args.mode == "full",
        "precision": precision,
        "device_batch_size_pairs": b,
        "accumulation": args.accumulation,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "trainable_m": round(sum(p.numel() for p in params) / 1e6, 3),
        "pairs_per_second": round(pairs / seconds, 2),
        "images_per_second": round(2 * pairs / seconds, 2),
        "peak_memory_gib": round(peak_memory_gib(args.device), 3),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare_cached and args.mode != "head":
        args.mode = "head"  # the cache only applies to head-only training
    result = run(args)
    print(json.dumps(result, indent=1))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
