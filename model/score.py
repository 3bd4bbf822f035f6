"""Score images at scale: ``python -m model.score INPUT --out scores.parquet``.

INPUT is a folder (scored recursively), a text file listing one path per line, or an
image dataset (``hf://datasets/<id>``, ``owner/name``, or a local dataset folder with
``--dataset``), streamed. Several processes split the work by themselves::

    accelerate launch --multi_gpu --num_processes 8 -m model.score /data/images --out scores.parquet
    torchrun --nproc_per_node 2 -m model.score /data/images --out scores.parquet   # CPU too

Each process (``RANK`` of ``WORLD_SIZE``, as set by accelerate/torchrun, or
``--rank``/``--world``) scores its chunks into ``scores.parquet.parts/``; a rerun skips
finished chunks; the last process to finish merges everything into one table with the
columns ``path, score, bucket, error``. Unreadable images get a row with their error.

``--embeddings <data dir>/embeddings`` also writes every image's pooled embedding into
the app's embedding cache (keyed by backbone fingerprint, precision and file bytes),
from the same forward: attaching the model to a large project afterwards
(:mod:`model.project_loop`) reads them instead of running the backbone again. Use the
precision the app will attach in (``--dtype fp32`` for an app on CPU; a GPU app runs
bf16, this command's default on a GPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from common.contracts import DEFAULT_MODEL_ID

log = logging.getLogger("model.score")
BUCKET_METHODS = ("auto", "sigmoid", "equal_width", "quantile", "none")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pstudio-score", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument("input", help="folder, file list (.txt), or dataset (hf://datasets/<id>)")
    p.add_argument("--out", default="scores.parquet", help="output table (.parquet or .csv)")
    p.add_argument("--model", default=DEFAULT_MODEL_ID, help="Hub id, folder or .safetensors file")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: GPU if any)")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "bf16", "fp16", "fp32"),
        help="backbone dtype (head is always fp32)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward (default 128 on GPU, 16 on CPU)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decode worker processes per process (default: cores / processes)",
    )
    p.add_argument(
        "--chunk-size", type=int, default=4096, help="images per part file (the unit of resume)"
    )
    p.add_argument(
        "--fast-decode",
        action="store_true",
        help="decode large JPEGs at 1/2-1/8 scale (faster; pixels differ slightly from upstream)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model (GPU, long runs)"
    )
    p.add_argument(
        "--rank", type=int, default=None, help="this process's index (default: $RANK or 0)"
    )
    p.add_argument(
        "--world", type=int, default=None, help="number of processes (default: $WORLD_SIZE or 1)"
    )
    p.add_argument(
        "--images-only", action="store_true", help="folders: only files with image extensions"
    )
    p.add_argument(
        "--dataset", action="store_true", help="treat INPUT as a dataset (local folder or id)"
    )
    p.add_argument("--split", default="train", help="dataset split")
    p.add_argument("--config-name", default=None, help="dataset configuration")
    p.add_argument(
        "--image-column", default=None, help="dataset image column (default: the first Image)"
    )
    p.add_argument(
        "--id-column",
        default=None,
        help="dataset column naming each row (default: split/shard/row)",
    )
    p.add_argument(
        "--buckets",
        default="auto",
        choices=BUCKET_METHODS,
        help="auto: the model's saved calibration, else equal_width",
    )
    p.add_argument("--labels", default=None, help="comma-separated bucket labels, worst first")
    p.add_argument("--k", type=int, default=None, help="number of buckets when no labels are given")
    p.add_argument(
        "--calibration", default=None, help="calibration.json to bucket with (overrides --buckets)"
    )
    p.add_argument(
        "--pairs",
        default=None,
        help="JoyQuality pairs JSON: fit method B (tau, b) on its test split",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="discard parts of an earlier, different job"
    )
    p.add_argument("--no-merge", action="store_true", help="only write this process's parts")
    p.add_argument("--merge-only", action="store_true", help="only merge existing parts")
    p.add_argument(
        "--embeddings",
        default=None,
        metavar="DIR",
        help="also write each image's pooled embedding into the embedding cache under DIR "
        "(the app's <data dir>/embeddings): attaching this model to a project with these "
        "images then reads them instead of running the backbone again",
    )
    p.add_argument("--local-files-only", action="store_true", help="never download the model")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return p


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _dtype(name: str):
    import torch

    return {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        name
    ]


def _labels(args) -> tuple[str, ...] | None:
    if args.labels:
        labels = tuple(s.strip() for s in args.labels.split(",") if s.strip())
        if not labels:
            raise ValueError("--labels is empty")
        return labels
    from model.calibrate import default_labels

    return default_labels(args.k) if args.k else None


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    """(first, second, label) from a JoyQuality JSON file: its test split, else train."""
    data = json.loads(Path(path).read_text())
    rows = data.get("test") or data.get("train") if isinstance(data, dict) else data
    if not rows:
        raise ValueError(f"{path}: no pairs (expected {{'test': [[winner, loser, 1], ...]}})")
    base = Path(path).parent
    out = []
    for row in rows:
        a, b = (str(p if Path(p).is_absolute() else base / p) for p in row[:2])
        out.append((a, b, float(row[2]) if len(row) > 2 else 1.0))
    return out


def choose_calibration(args, model, parts_dir: Path):
    """The calibration to bucket with, fitted on this run's scores where needed."""
    from model import calibrate
    from model.shards import all_scores, part_files

    labels = _labels(args)
    if args.calibration:
        return calibrate.Calibration.load(args.calibration)
    if args.pairs:
        return fit_from_pairs(
            model, read_pairs(Path(args.pairs)), all_scores(part_files(parts_dir)), labels
        )
    method = args.buckets
    saved = getattr(model, "calibration", None)
    if method == "none":
        return None
    if method in ("auto", "sigmoid") and saved is not None:
        return saved
    if method == "sigmoid":
        raise ValueError(
            "--buckets sigmoid needs a model with calibration.json, --calibration or --pairs"
        )
    scores = all_scores(part_files(parts_dir))
    if not (scores == scores).any():  # every image failed: nothing to place edges on
        return None
    edges = "quantile" if method == "quantile" else "equal_width"  # "auto" without a saved one
    return calibrate.calibration_for(scores, edges, labels)


def fit_from_pairs(model, pairs: list[tuple[str, str, float]], dataset_scores, labels=None):
    """Method B: score the pair images, fit tau on them and b on the dataset's scores."""
    import numpy as np

    from model.calibrate import fit_calibration
    from model.scoring import score_images

    paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    scored = {r["path"]: r["score"] for r in score_images(model, paths, num_workers=0)}
    sa = np.array([scored[a] for a, _, _ in pairs])
    sb = np.array([scored[b] for _, b, _ in pairs])
    y = np.array([lab for _, _, lab in pairs])
    keep = np.isfinite(sa) & np.isfinite(sb)
    return fit_calibration(dataset_scores, sa[keep], sb[keep], labels=labels, pair_labels=y[keep])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
    )
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"pstudio-score: error: {exc}", file=sys.stderr)
        return 2


def run(args) -> int:
    import torch

    from model.joyquality import load_model
    from model.scoring import default_workers
    from model.shards import (
        all_done,
        check_manifest,
        clear_done,
        mark_done,
        merge_parts,
        parts_dir_for,
        score_shard,
    )  # fmt: skip
    from model.sources import open_source

    rank = args.rank if args.rank is not None else _env_int("RANK", 0)
    world = args.world if args.world is not None else _env_int("WORLD_SIZE", 1)
    local_rank, local_world = _env_int("LOCAL_RANK", 0), _env_int("LOCAL_WORLD_SIZE", world)
    out = Path(args.out)
    parts_dir = parts_dir_for(out)
    device = args.device
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    on_gpu = str(device).startswith("cuda")
    batch_size = args.batch_size or (128 if on_gpu else 16)
    workers = (
        args.workers
        if args.workers is not None
        else max(1, default_workers() // max(1, local_world))
    )
    model = load_model(
        args.model,
        device=device,
        dtype=_dtype(args.dtype),
        local_files_only=args.local_files_only or None,
    )
    source = open_source(
        args.input, images_only=args.images_only, dataset=args.dataset, split=args.split,
        image_column=args.image_column, id_column=args.id_column, config=args.config_name,
        total_workers=world * max(1, workers),
    )  # fmt: skip
    manifest = {"input": source.describe(), "chunk_size": args.chunk_size, "model": str(args.model)}
    cache = None
    if args.embeddings:  # a rerun must not skip chunks whose embeddings were never written
        from model.embeddings import EmbeddingCache, backbone_fingerprint, precision_of

        cache = EmbeddingCache(args.embeddings, backbone_fingerprint(model, precision_of(model)))
        manifest["embeddings"] = cache.fingerprint
    if not args.merge_only:
        check_manifest(parts_dir, manifest, overwrite=args.overwrite and rank == 0)
        clear_done(parts_dir, rank, world)
        start = time.perf_counter()
        stats = score_shard(
            model, source, parts_dir, rank=rank, world=world, chunk_size=args.chunk_size,
            batch_size=batch_size, num_workers=workers, compile=args.compile,
            fast_decode=args.fast_decode, on_chunk=lambda key, n: log.info("rank %d: chunk %s done (%d images)", rank, key, n),
            embeddings=cache,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        mark_done(parts_dir, rank, world, stats)
        rate = (stats.scored + stats.failed) / elapsed if elapsed > 0 else 0.0
        print(
            f"rank {rank}/{world}: scored {stats.scored}, failed {stats.failed}, "
            f"chunks written {stats.chunks_written}, already done {stats.chunks_skipped} "
            f"({rate:.1f} images/s)"
        )
        if cache is not None:
            print(f"  embeddings: {stats.embedded} written to {cache.folder}")
        for name, reason in stats.failures[:20]:
            print(f"  unreadable: {name}: {reason}")
        if args.no_merge or not all_done(parts_dir, world):
            return 0
    elif not parts_dir.is_dir():
        raise FileNotFoundError(f"no parts to merge in {parts_dir}")
    calibration = choose_calibration(args, model, parts_dir)
    meta = {"model": str(args.model), "input": manifest["input"]}
    summary = merge_parts(parts_dir, out, calibration, metadata=meta)
    if calibration is not None:
        calibration.save(out.with_name(out.name + ".calibration.json"))
    print(f"merged {summary['rows']} rows ({summary['failed']} unreadable) into {summary['out']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
