"""The one GPU check: so400m-512 scoring speed and a full fine-tune under a 24 GB cap.

Runs offline on one GPU in a few minutes and needs no downloads: the real JoyQuality
weights are used when they are already in the Hugging Face cache, otherwise random
weights of the same architecture (the same FLOPs, so the same speed). Test images are
generated here. Stages, each timed, each allowed to fail without stopping the rest:

1. ``forward``: model forward on synthetic pixels at a few static batch sizes (bf16
   backbone, SDPA attention, fp32 head), after warm-up;
2. ``end_to_end``: JPEG files scored through the app's sharded scorer
   (``model.shards.score_shard``: DataLoader workers decoding and resizing, pinned
   memory, part files), with exact and with draft-mode (fast) JPEG decoding;
3. ``finetune``: a full fine-tune through ``training.loop.train`` (the code the app and
   ``python -m training`` run) with gradient checkpointing at 4 pairs per device,
   under ``torch.cuda.set_per_process_memory_fraction`` = 24 GB: an allocation above
   the cap fails here as it would on a 24 GB card.

The results print as they come, next to JoyQuality's published 204 images/s (H100),
and are written as JSON to ``--out`` after every stage. A total time cap skips stages
that would not finish in time.

GPU (the check the README quotes)::

    python bench/gpu_check.py --out gpu_check.json

CPU smoke test with a tiny model (seconds; what CI runs)::

    python bench/gpu_check.py --arch tiny --device cpu --out /tmp/check.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

UPSTREAM_IMAGES_PER_S = 204.0  # JoyQuality's README: so400m-512 scoring on an H100
TARGET_IMAGES_PER_S = 400.0
GIB = 2**30


def say(*parts) -> None:
    print(*parts, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=("so400m", "tiny"), default="so400m")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="gpu_check.json", help="write the JSON results here")
    p.add_argument("--time-cap", type=float, default=450.0, help="seconds for all stages")
    p.add_argument("--score-images", type=int, default=None, help="JPEGs end to end")
    p.add_argument("--jpeg-size", default=None, help="WxH of the JPEGs (1024x768; tiny 96x64)")
    p.add_argument("--batch-size", type=int, default=None, help="scoring batch (static)")
    p.add_argument("--workers", type=int, default=None, help="decode workers (default cores-1)")
    p.add_argument("--memory-cap-gb", type=float, default=24.0)
    p.add_argument("--device-batch-size", type=int, default=4, help="pairs per forward")
    p.add_argument("--train-steps", type=int, default=None, help="optimizer steps")
    p.add_argument("--compile", action="store_true", help="torch.compile the scorer")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict:
    import accelerate
    import transformers

    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "cpu_cores": os.cpu_count(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / GIB, 1))
        env["sdpa_backends"] = {
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
        }
    return env


def build_model(arch: str, device: torch.device):
    """The real JoyQuality when cached (offline), else random weights of the same shape."""
    from model.joyquality import build_random_model, build_tiny_model, so400m_config

    if arch == "tiny":
        return build_tiny_model(image_size=32).to_device(device), "random tiny"
    try:
        from model.joyquality import load_model

        return load_model(device=device, local_files_only=True), "real JoyQuality (cached)"
    except Exception as exc:  # not cached, no hub client, ...: the same FLOPs at random
        say(f"  real weights not available ({type(exc).__name__}): random so400m-512 weights")
    return build_random_model(so400m_config(), device=device), "random so400m-512"


def stage_forward(model, device: torch.device, batch_sizes: list[int], seconds: float) -> dict:
    """Forward images/s on synthetic uint8 pixels (upload, normalise, forward, to host)."""
    from model.scoring import Scorer

    scorer = Scorer(model)
    out = {}
    for batch in batch_sizes:
        pixels = torch.randint(0, 256, (batch, 3, scorer.size, scorer.size), dtype=torch.uint8)
        if device.type == "cuda":
            pixels = pixels.pin_memory()
        for _ in range(2):  # warm-up: kernels, allocator
            scorer(pixels)
        _sync(device)
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < seconds:
            scorer(pixels)
            n += 1
            if n >= 50:
                break
        _sync(device)
        rate = n * batch / (time.perf_counter() - start)
        out[str(batch)] = round(rate, 1)
        say(f"  forward batch {batch}: {rate:.1f} images/s")
    return {"images_per_s_by_batch": out, "best_images_per_s": max(out.values())}


def make_jpegs(folder: Path, n: int, size: tuple[int, int], quality: int = 90) -> list[Path]:
    """Photo-like JPEGs (smooth colour fields plus noise); 64 distinct files, hard links after."""
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i in range(min(n, 64)):
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack(
            [
                127 + 100 * np.sin(xx / (40 + 7 * c) + yy / (55 + 5 * c) + phase[c])
                for c in range(3)
            ],
            -1,
        )
        arr = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"img{i:06d}.jpg")
        Image.fromarray(arr).save(paths[-1], quality=quality)
    for i in range(len(paths), n):
        link = folder / f"img{i:06d}.jpg"
        os.link(paths[i % 64], link)
        paths.append(link)
    return paths


def stage_end_to_end(model, folder: Path, batch_size: int, workers: int, fast: bool) -> dict:
    """Score every JPEG in ``folder`` through the app's sharded scorer."""
    from model.shards import score_shard
    from model.sources import FolderSource

    with tempfile.TemporaryDirectory() as parts:
        start = time.perf_counter()
        stats = score_shard(
            model, FolderSource(folder), Path(parts), chunk_size=max(batch_size * 8, 512),
            batch_size=batch_size, num_workers=workers, fast_decode=fast,
        )  # fmt: skip
        _sync(model.device)
        seconds = time.perf_counter() - start
    n = stats.scored + stats.failed
    rate = n / seconds
    say(
        f"  end to end ({'draft' if fast else 'exact'} JPEG decode, {workers} workers, "
        f"batch {batch_size}): {n} images in {seconds:.1f} s = {rate:.1f} images/s "
        f"({rate / UPSTREAM_IMAGES_PER_S:.2f}x JoyQuality's {UPSTREAM_IMAGES_PER_S:.0f})"
    )
    return {"images": n, "failed": stats.failed, "seconds": round(seconds, 2),
            "images_per_s": round(rate, 1)}  # fmt: skip


def make_pair_task(folder: Path, images: int, size: tuple[int, int]) -> Path:
    """A JoyQuality JSON over generated images: each clean image beats its blurred copy."""
    from PIL import ImageFilter

    rng = np.random.default_rng(1)
    w, h = size
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(images):
        arr = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        img = Image.fromarray(arr).resize((w, h), Image.Resampling.NEAREST)
        clean, bad = f"clean{i}.jpg", f"bad{i}.jpg"
        img.save(folder / clean, quality=92)
        img.filter(ImageFilter.GaussianBlur(3)).save(folder / bad, quality=92)
        names.append((clean, bad))
    split = max(1, images // 4)
    rows = {
        "train": [[c, b, 1] for c, b in names[split:]] + [[b, c, -1] for c, b in names[split:]],
        "test": [[c, b, 1] for c, b in names[:split]],
    }
    path = folder / "pairs.json"
    path.write_text(json.dumps(rows))
    return path


def stage_finetune(args, device: torch.device, tmp: Path) -> dict:
    """A full fine-tune through training.loop under the memory cap; pairs/s and peak memory."""
    from model.joyquality import build_random_model, so400m_config, tiny_config
    from training.config import TrainConfig
    from training.loop import train

    cuda = device.type == "cuda"
    cap = {}
    if cuda:
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(device).total_memory
        fraction = min(1.0, args.memory_cap_gb * 1e9 / total)
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        torch.cuda.reset_peak_memory_stats(device)
        cap = {"memory_cap_gb": args.memory_cap_gb, "fraction_of_gpu": round(fraction, 4)}
        say(f"  memory capped at {args.memory_cap_gb} GB ({fraction:.3f} of the GPU)")
    tiny = args.arch == "tiny"
    config = tiny_config(32) if tiny else so400m_config()
    model = build_random_model(config, device="cpu")  # fp32 on the CPU, as training loads it
    model.vision_model.float()
    data = make_pair_task(tmp / "pairs", 16 if tiny else 48, (64, 48) if tiny else (640, 480))
    dbs = args.device_batch_size
    steps = args.train_steps or (4 if tiny else 12)
    cfg = TrainConfig(
        data=str(data), output_dir=str(tmp / "run"), base_model="random-weights",
        train_mode="full", gradient_checkpointing=True, lr_scheduler="cosine",
        learning_rate=2e-5, warmup_samples=2 * dbs * 2, batch_size=dbs * 2,
        device_batch_size=dbs, total_samples=dbs * 2 * steps, test_every=0,
        eval_at_start=False, checkpoint_every=0, robustness_images=0, report_to="none",
        num_workers=0 if tiny else 8, cpu=not cuda, seed=0,
    )  # fmt: skip
    start = time.perf_counter()
    result = train(cfg, model=model)
    seconds = time.perf_counter() - start
    out = {
        **cap,
        "steps": result.steps,
        "pairs_per_step": cfg.batch_size,
        "device_batch_pairs": dbs,
        "images_per_forward": 2 * dbs,
        "pairs_per_s": round(result.pairs_per_second, 2),
        "train_images_per_s": round(2 * result.pairs_per_second, 2),
        "run_seconds_with_setup_and_eval": round(seconds, 1),
        "saved": bool(result.final_dir and (result.final_dir / "model.safetensors").is_file()),
    }
    if cuda:
        out["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 2)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / GIB, 2)
        out["fits_cap"] = out["peak_reserved_gib"] * GIB <= args.memory_cap_gb * 1e9
    say(
        f"  fine-tune: {result.steps} steps of {cfg.batch_size} pairs at {dbs} pairs/device: "
        f"{out['pairs_per_s']} pairs/s ({out['train_images_per_s']} images/s), "
        f"peak {out.get('peak_reserved_gib', '-')} GiB reserved"
    )
    return out


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    began = time.perf_counter()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    tiny = args.arch == "tiny"
    workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    batch = args.batch_size or (256 if cuda and not tiny else 32)
    n_images = args.score_images or (4096 if cuda and not tiny else 64)
    report: dict = {"arch": args.arch, "upstream_images_per_s_h100": UPSTREAM_IMAGES_PER_S,
                    "target_images_per_s": TARGET_IMAGES_PER_S, "stages": {}}  # fmt: skip
    out = Path(args.out)

    def save() -> None:
        report["seconds"] = round(time.perf_counter() - began, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")

    def stage(name: str, budget: float, fn, *a):
        left = args.time_cap - (time.perf_counter() - began)
        if left < budget:
            say(f"[{name}] skipped: {left:.0f} s left of the time cap, it needs ~{budget:.0f} s")
            report["stages"][name] = {"skipped": "time cap"}
            save()
            return None
        say(f"[{name}]")
        t0 = time.perf_counter()
        try:
            result = fn(*a)
            result = dict(result, stage_seconds=round(time.perf_counter() - t0, 1))
        except Exception as exc:
            traceback.print_exc()
            sys.stderr.flush()
            result = {"error": f"{type(exc).__name__}: {exc}"}
            say(f"  failed: {result['error']}")
        report["stages"][name] = result
        save()
        return result

    say("[environment]")
    report["environment"] = environment(device)
    say("  " + json.dumps(report["environment"]))
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    model_box: dict = {}

    def load() -> dict:
        model_box["model"], source = build_model(args.arch, device)
        m = model_box["model"]
        return {"weights": source, "image_size": m.image_size,
                "backbone_dtype": str(m.backbone_dtype), "head_dtype": str(m.classifier.weight.dtype),
                "params": sum(p.numel() for p in m.parameters())}  # fmt: skip

    stage("model", 5 if tiny else 30, load)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "model" in model_box:
            sizes = [batch] if tiny else sorted({64, 128, batch})
            stage("forward", 5 if tiny else 40, stage_forward, model_box["model"], device,
                  sizes, 0.5 if tiny else 4.0)  # fmt: skip
            jpeg = args.jpeg_size or ("96x64" if tiny else "1024x768")
            w, h = (int(v) for v in jpeg.lower().split("x"))
            folder = tmp / "jpegs"
            say(f"[jpegs] writing {n_images} test JPEGs of {w}x{h}")
            make_jpegs(folder, n_images, (w, h))
            for fast in (False, True):
                name = "end_to_end_draft_decode" if fast else "end_to_end"
                stage(name, 5 if tiny else 60, stage_end_to_end, model_box["model"], folder,
                      batch, workers, fast)  # fmt: skip
        model_box.clear()
        if cuda:
            torch.cuda.empty_cache()
        stage("finetune", 10 if tiny else 120, stage_finetune, args, device, tmp)
    summary = _summary(report)
    report["summary"] = summary
    save()
    say("[summary]")
    for line in summary["lines"]:
        say("  " + line)
    return report


def _summary(report: dict) -> dict:
    stages = report["stages"]
    e2e = [stages.get(k, {}).get("images_per_s") for k in ("end_to_end", "end_to_end_draft_decode")]
    e2e = [v for v in e2e if v]
    best = max(e2e) if e2e else None
    fwd = stages.get("forward", {}).get("best_images_per_s")
    ft = stages.get("finetune", {})
    lines = [
        f"scoring end to end: {best} images/s (JoyQuality published {UPSTREAM_IMAGES_PER_S:.0f} "
        f"on an H100; target >= {TARGET_IMAGES_PER_S:.0f})",
        f"model forward alone: {fwd} images/s",
        f"full fine-tune: {ft.get('pairs_per_s')} pairs/s at {ft.get('device_batch_pairs')} "
        f"pairs/device, peak {ft.get('peak_reserved_gib')} GiB reserved "
        f"(cap {ft.get('memory_cap_gb')} GB), fits: {ft.get('fits_cap')}",
    ]
    return {"end_to_end_images_per_s": best, "forward_images_per_s": fwd,
            "meets_400": bool(best and best >= TARGET_IMAGES_PER_S),
            "finetune_pairs_per_s": ft.get("pairs_per_s"),
            "finetune_peak_reserved_gib": ft.get("peak_reserved_gib"),
            "finetune_fits_cap": ft.get("fits_cap"), "lines": lines}  # fmt: skip


if __name__ == "__main__":
    run()
