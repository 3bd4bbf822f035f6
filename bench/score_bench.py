"""Scoring benchmark: images/s end to end and per stage, and peak memory.

Stages measured separately, then together:

- decode and resize, per CPU worker (one process: JPEG decode + EXIF/RGB, then the
  BICUBIC squash to the model's size), so ``workers x rate`` says whether the loaders
  can feed the model;
- model forward (upload, normalise, forward, scores back) on synthetic pixels;
- end to end through the sharded CLI pipeline (``model.shards.score_shard``: the
  DataLoader workers, pinned memory, part files) over a folder of JPEG files.

CPU, tiny model (what CI can run)::

    python bench/score_bench.py --device cpu --arch tiny --images 512 --workers 1

H100, the real so400m-512 architecture with random weights (target: >= 400 images/s
end to end, head fp32)::

    python bench/score_bench.py --device cuda --arch so400m --images 8192 \\
        --batch-size 256 --workers 15 [--compile]

Writes a JSON report (``--json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.joyquality import build_random_model, build_tiny_model, so400m_config  # noqa: E402
from model.preprocess import open_image, resize_squash, to_uint8_tensor  # noqa: E402
from model.scoring import Scorer  # noqa: E402
from model.shards import score_shard  # noqa: E402
from model.sources import FolderSource  # noqa: E402


def make_jpegs(folder: Path, n: int, size: tuple[int, int], quality: int = 90) -> list[Path]:
    """Photo-like JPEGs (smooth gradients plus texture), so decode cost is realistic."""
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(min(n, 64)):  # 64 distinct files, repeated by hard links when more are asked
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack(
            [
                127 + 100 * np.sin(xx / (40 + 7 * c) + yy / (55 + 5 * c) + phase[c])
                for c in range(3)
            ],
            -1,
        )
        noise = rng.normal(0, 12, (h, w, 3))
        arr = np.clip(base + noise, 0, 255).astype(np.uint8)
        path = folder / f"img{i:06d}.jpg"
        Image.fromarray(arr).save(path, quality=quality)
        paths.append(path)
    for i in range(len(paths), n):
        link = folder / f"img{i:06d}.jpg"
        link.hardlink_to(paths[i % 64])
        paths.append(link)
    return paths


def bench_decode(paths: list[Path], size: int, seconds: float = 3.0, fast: bool = False) -> dict:
    """Single-process decode and resize rates (what one loader worker does)."""
    t_decode = t_resize = 0.0
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds and n < len(paths) * 4:
        p = paths[n % len(paths)]
        t0 = time.perf_counter()
        img = open_image(p, draft_size=size if fast else None)
        t1 = time.perf_counter()
        to_uint8_tensor(resize_squash(img, size), size)
        t2 = time.perf_counter()
        t_decode += t1 - t0
        t_resize += t2 - t1
        n += 1
    return {
        "images": n,
        "decode_per_s": n / t_decode,
        "resize_per_s": n / t_resize,
        "decode_resize_per_worker_per_s": n / (t_decode + t_resize),
    }


def bench_forward(scorer: Scorer, batch_size: int, batches: int, warmup: int = 2) -> dict:
    """Forward rate on synthetic pixels (upload + normalise + forward + scores to host)."""
    size = scorer.size
    pixels = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8)
    if scorer.device.type == "cuda":
        pixels = pixels.pin_memory()
    for _ in range(warmup):
        scorer(pixels)
    _sync(scorer.device)
    start = time.perf_counter()
    for _ in range(batches):
        scorer(pixels)
    _sync(scorer.device)
    elapsed = time.perf_counter() - start
    return {
        "batches": batches,
        "batch_size": batch_size,
        "forward_per_s": batches * batch_size / elapsed,
    }


def bench_end_to_end(model, folder: Path, batch_size: int, workers: int, compile: bool) -> dict:
    with tempfile.TemporaryDirectory() as parts:
        start = time.perf_counter()
        stats = score_shard(
            model, FolderSource(folder), Path(parts), chunk_size=max(batch_size * 16, 1024),
            batch_size=batch_size, num_workers=workers, compile=compile,
        )  # fmt: skip
        _sync(model.device)
        elapsed = time.perf_counter() - start
    n = stats.scored + stats.failed
    return {
        "images": n,
        "failed": stats.failed,
        "seconds": elapsed,
        "end_to_end_per_s": n / elapsed,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: torch.device) -> dict:
    out = {"host_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--arch", choices=("tiny", "so400m"), default="tiny")
    p.add_argument("--images", type=int, default=512, help="JPEG files end to end")
    p.add_argument("--jpeg-size", default="1024x768", help="WxH of the generated JPEGs")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--forward-batches", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto")
    p.add_argument("--json", default=None, help="write the report here")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    dtype = {"auto": None, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    if args.arch == "tiny":
        model = build_tiny_model(image_size=32).to_device(device, dtype)
    else:
        model = build_random_model(so400m_config(), device=device).to_device(device, dtype)
    batch_size = args.batch_size or (256 if device.type == "cuda" else 64)
    w, h = (int(v) for v in args.jpeg_size.lower().split("x"))
    report: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "arch": args.arch, "image_size": model.image_size, "backbone_dtype": str(model.backbone_dtype),
        "head_dtype": str(model.classifier.weight.dtype), "batch_size": batch_size,
        "workers": args.workers, "jpeg": args.jpeg_size, "torch": torch.__version__,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_jpegs(folder, args.images, (w, h))
        report["decode"] = bench_decode(paths, model.image_size)
        report["decode_fast"] = bench_decode(paths, model.image_size, fast=True)
        scorer = Scorer(model, compile=args.compile)
        batches = args.forward_batches or (20 if device.type == "cuda" else 10)
        report["forward"] = bench_forward(scorer, batch_size, batches)
        report["end_to_end"] = bench_end_to_end(
            model, folder, batch_size, args.workers, args.compile
        )
    report["memory"] = peak_memory(device)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(markdown(report))
    return report


def markdown(r: dict) -> str:
    d, f, e = r["decode"], r["forward"], r["end_to_end"]
    mem = ", ".join(f"{k} {v:.0f}" for k, v in r["memory"].items())
    return "\n".join(
        [
            f"Device: {r['device']}; arch {r['arch']} ({r['image_size']} px, backbone "
            f"{r['backbone_dtype']}, head {r['head_dtype']}); batch {r['batch_size']}; "
            f"{r['workers']} loader workers; JPEG {r['jpeg']}",
            "",
            "| stage | images/s |",
            "|---|---|",
            f"| decode (1 worker) | {d['decode_per_s']:.0f} |",
            f"| resize (1 worker) | {d['resize_per_s']:.0f} |",
            f"| decode + resize (1 worker) | {d['decode_resize_per_worker_per_s']:.0f} |",
            f"| decode + resize, --fast-decode (1 worker) | {r['decode_fast']['decode_resize_per_worker_per_s']:.0f} |",
            f"| model forward | {f['forward_per_s']:.0f} |",
            f"| end to end ({e['images']} JPEGs) | {e['end_to_end_per_s']:.0f} |",
            "",
            f"Peak memory (MiB): {mem}",
        ]
    )


if __name__ == "__main__":
    main()
