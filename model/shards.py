"""Sharded, resumable scoring: each process scores its chunks into Parquet parts.

Layout beside the output ``scores.parquet``::

    scores.parquet.parts/
        manifest.json                 input, chunk size and model: reruns must match
        part-<key>.parquet            one finished chunk (path, score, error)
        rank-<r>-of-<w>.done          process r of w has finished its share

A part is written atomically when its chunk is complete, so an interrupted run loses
at most the chunks in flight and a rerun skips every finished one. Processes never
talk to each other: the one that finds every ``.done`` marker present merges the parts
into the final table (merging twice gives the same file). Memory stays flat: one
chunk per worker in flight, and the merge streams part by part (only the score column
of the whole run is held, to place bucket edges).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from model.embeddings import image_digest, read_bytes
from model.scoring import Batch, Scorer, item_name, loader_options, make_batch, read_item

PART_RE = re.compile(r"^part-(?P<key>.+)\.parquet$")
SHARD_LAST_RE = re.compile(r"^(?P<shard>\d{5})-(?P<k>\d{6})-last$")
log = logging.getLogger(__name__)


def parts_dir_for(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def done_keys(parts_dir: Path) -> frozenset[str]:
    """Keys of finished chunks, plus ``<shard>-complete`` for fully finished Hub shards."""
    if not parts_dir.is_dir():
        return frozenset()
    keys = {m["key"] for p in parts_dir.iterdir() if (m := PART_RE.match(p.name))}
    complete = set()
    for key in keys:
        if m := SHARD_LAST_RE.match(key):
            shard, last = m["shard"], int(m["k"])
            if all(f"{shard}-{k:06d}" in keys for k in range(last)):
                complete.add(f"{shard}-complete")
    return frozenset(keys | complete)


def check_manifest(parts_dir: Path, manifest: dict, overwrite: bool = False) -> None:
    """Create the parts folder, or make sure an existing one belongs to the same job."""
    path = parts_dir / "manifest.json"
    if overwrite and parts_dir.is_dir():
        for p in parts_dir.iterdir():
            p.unlink()
    parts_dir.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        old = json.loads(path.read_text())
        if old != manifest:
            raise ValueError(
                f"{parts_dir} holds parts of a different job ({old}); "
                "pass --overwrite to start again or choose another --out"
            )
        return
    _atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ChunkStream(IterableDataset):
    """Batches of this worker's pending chunks: decode and resize happen here, in workers."""

    def __init__(
        self,
        source,
        *,
        size: int,
        chunk_size: int,
        batch_size: int,
        rank: int,
        world: int,
        skip: frozenset[str],
        fast_decode: bool = False,
        digests: bool = False,
    ) -> None:
        self.source, self.size = source, size
        self.chunk_size, self.batch_size = chunk_size, batch_size
        self.rank, self.world, self.skip = rank, world, skip
        self.fast_decode, self.digests = fast_decode, digests

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)

        def owns(unit: int) -> bool:
            return unit % self.world == self.rank and (unit // self.world) % workers == worker

        for key, items in self.source.iter_chunks(self.chunk_size, owns, self.skip):
            for start in range(0, len(items), self.batch_size):
                part = items[start : start + self.batch_size]
                if not self.digests:
                    results = [read_item(item, self.size, self.fast_decode) for item in part]
                    digests = None
                else:
                    results, digests = zip(*(self._hashed(item) for item in part), strict=True)
                batch = make_batch(
                    [item_name(i) for i in part], results, self.size, key, len(items)
                )
                batch.digests = list(digests) if digests is not None else None
                yield batch

    def _hashed(self, item) -> tuple[tuple[torch.Tensor | None, str | None], str | None]:
        """Decode one item from its bytes, read once, and key them like the embedding
        cache does (:func:`model.embeddings.image_digest`)."""
        name = item_name(item)
        raw = item[1] if isinstance(item, tuple) else item
        if raw is None:
            return (None, "no image data"), None
        try:
            data = read_bytes(raw)
        except OSError as exc:
            return (None, f"cannot read the file ({exc.strerror or exc})"), None
        return read_item((name, data), self.size, self.fast_decode), image_digest(data)


@dataclass
class ShardStats:
    """What one process did."""

    scored: int = 0
    failed: int = 0
    chunks_written: int = 0
    chunks_skipped: int = 0
    embedded: int = 0  # embeddings written to the cache (``--embeddings``)
    failures: list[tuple[str, str]] = field(default_factory=list)


def write_part(parts_dir: Path, key: str, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "path": pa.array([r["path"] for r in rows], pa.string()),
            "score": pa.array([r["score"] for r in rows], pa.float64()),
            "error": pa.array([r["error"] for r in rows], pa.string()),
        }
    )
    final = parts_dir / f"part-{key}.parquet"
    tmp = parts_dir / f".part-{key}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def score_shard(
    model: torch.nn.Module,
    source,
    parts_dir: Path,
    *,
    rank: int = 0,
    world: int = 1,
    chunk_size: int = 4096,
    batch_size: int = 64,
    num_workers: int = 0,
    compile: bool = False,
    fast_decode: bool = False,
    on_chunk: Callable[[str, int], None] | None = None,
    embeddings=None,
) -> ShardStats:
    """Score this process's share of ``source`` into part files, skipping finished chunks.

    ``embeddings``: a :class:`model.embeddings.EmbeddingCache` of ``model``'s backbone;
    each readable image's pooled embedding is put there too (the same forward: the
    scores are the head applied to those vectors), keyed by its file bytes.
    """
    if embeddings is not None and fast_decode:
        raise ValueError(
            "--fast-decode changes the pixels: cached embeddings must come from the exact "
            "decode that attaching a model uses; drop one of the two options"
        )
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside 0..{world - 1}")
    if chunk_size < 1 or batch_size < 1:
        raise ValueError("chunk_size and batch_size must be at least 1")
    scorer = Scorer(model, compile=compile)
    skip = done_keys(parts_dir)
    stream = ChunkStream(
        source, size=scorer.size, chunk_size=chunk_size, batch_size=batch_size,
        rank=rank, world=world, skip=skip, fast_decode=fast_decode,
        digests=embeddings is not None,
    )  # fmt: skip
    opts = loader_options(scorer.device, num_workers)
    if num_workers > 0:
        opts["in_order"] = False  # a slow chunk must not stall the other workers
    loader = DataLoader(stream, batch_size=None, **opts)
    stats = ShardStats(chunks_skipped=sum(1 for k in skip if not k.endswith("-complete")))
    pending: dict[str, list[dict]] = {}
    for batch in loader:
        rows = pending.setdefault(batch.key, [])
        if embeddings is None:
            rows.extend(scorer.rows(batch))
        else:
            pooled, scores = scorer.embed(batch.pixels)
            good = [d for d, ok in zip(batch.digests, batch.ok.tolist(), strict=True) if ok]
            for digest, vector in zip(good, pooled, strict=True):
                embeddings.put(digest, vector.numpy())
            stats.embedded += len(good)
            rows.extend(scorer.rows(batch, scores))
        if len(rows) < batch.chunk_total:
            continue
        write_part(parts_dir, batch.key, pending.pop(batch.key))
        stats.chunks_written += 1
        bad = [(r["path"], r["error"]) for r in rows if r["error"] is not None]
        stats.failed += len(bad)
        stats.scored += len(rows) - len(bad)
        stats.failures.extend(bad[: max(0, 1000 - len(stats.failures))])
        if on_chunk is not None:
            on_chunk(batch.key, len(rows))
    if pending:  # cannot happen unless a worker died mid-chunk; never write half a chunk
        raise RuntimeError(f"incomplete chunks at the end: {sorted(pending)}")
    return stats


def mark_done(parts_dir: Path, rank: int, world: int, stats: ShardStats) -> None:
    info = {k: v for k, v in stats.__dict__.items() if k != "failures"}
    _atomic_write_text(parts_dir / f"rank-{rank}-of-{world}.done", json.dumps(info))


def all_done(parts_dir: Path, world: int) -> bool:
    return all((parts_dir / f"rank-{r}-of-{world}.done").is_file() for r in range(world))


def clear_done(parts_dir: Path, rank: int, world: int) -> None:
    (parts_dir / f"rank-{rank}-of-{world}.done").unlink(missing_ok=True)


def part_files(parts_dir: Path) -> list[Path]:
    """Finished parts in key order (the input's order)."""
    return sorted(
        (p for p in parts_dir.iterdir() if PART_RE.match(p.name)),
        key=lambda p: PART_RE.match(p.name)["key"],
    )


def all_scores(parts: list[Path]):
    """The score column of every part, concatenated (float64 numpy array)."""
    import numpy as np
    import pyarrow.parquet as pq

    arrays = [pq.read_table(p, columns=["score"])["score"].to_numpy() for p in parts]
    return np.concatenate(arrays) if arrays else np.empty(0)


def merge_parts(parts_dir: Path, out: Path, calibration=None, metadata: dict | None = None) -> dict:
    """Stream every part into one table ``(path, score, bucket, error)`` at ``out``.

    ``.csv`` outputs are CSV, anything else Parquet; ``bucket`` holds the calibration's
    label (null without a calibration or for failed images). Returns a summary.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from common.contracts import SCORE_COLUMNS

    types = (pa.string(), pa.float64(), pa.string(), pa.string())  # path, score, bucket, error
    schema = pa.schema(list(zip(SCORE_COLUMNS, types, strict=True)))
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    if calibration is not None:
        meta["calibration"] = json.dumps(calibration.to_dict())
    schema = schema.with_metadata(meta)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = out.suffix.lower() == ".csv"
    writer = pacsv.CSVWriter(tmp, schema) if csv else pq.ParquetWriter(tmp, schema)
    total = failed = 0
    try:
        for part in part_files(parts_dir):
            t = pq.read_table(part)
            scores = t["score"].to_numpy()
            labels = calibration.labels_for(scores) if calibration is not None else [None] * len(t)
            table = pa.table(
                [t["path"], t["score"], pa.array(labels, pa.string()), t["error"]], schema=schema
            )
            writer.write_table(table)
            total += len(t)
            failed += int(sum(1 for s in scores if math.isnan(s)))
    finally:
        writer.close()
    os.replace(tmp, out)
    return {"rows": total, "failed": failed, "out": str(out)}
