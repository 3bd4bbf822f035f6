"""Batched scoring: images in, one row per image out, failures reported by name.

Decoding and resizing run in DataLoader worker processes, which ship ``uint8``
tensors (pinned on a GPU); normalisation and the forward run on the device. An image
that cannot be read becomes a row with ``score`` NaN and an ``error`` naming the
reason: it is never dropped.

Example::

    model = load_model("runs/me/final")
    rows = score_images(model, ["a.jpg", "b.png"], batch_size=64, num_workers=4)
    rows[0]  # {"path": "a.jpg", "score": 1.83, "bucket": "high quality", "error": None}
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from common.contracts import SCORE_COLUMNS
from common.images import ImageReadError
from common.maths import sigmoid
from model.preprocess import normalize, open_image, to_uint8_tensor

# One image to score: a path, or (name, encoded bytes or a path) for uploads and Hub
# datasets; the name is what the score table shows.
Item = str | Path | tuple[str, bytes | str]


def item_name(item: Item) -> str:
    """The name an item gets in the score table (its path, or the name given with bytes)."""
    return item[0] if isinstance(item, tuple) else str(item)


def read_item(
    item: Item, size: int, fast_decode: bool = False
) -> tuple[torch.Tensor | None, str | None]:
    """Decode and resize one item to ``uint8 [3, size, size]``, or return the error text."""
    draft = size if fast_decode else None
    try:
        if isinstance(item, tuple):
            name, data = item
            if data is None:
                return None, "no image data"
            img = open_image(data, name=name, draft_size=draft)
        else:
            img = open_image(item, draft_size=draft)
        return to_uint8_tensor(img, size), None
    except ImageReadError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not kill a million-image run
        return None, f"unexpected {type(exc).__name__}: {exc}"


@dataclass
class Batch:
    """What a worker hands to the main process: pixels of the good images, errors of the rest."""

    names: list[str]
    pixels: torch.Tensor  # uint8 [n_ok, 3, S, S]
    ok: torch.Tensor  # bool [len(names)]
    errors: list[str | None]
    key: str = ""  # the chunk this batch belongs to (sharded CLI); "" otherwise
    chunk_total: int = 0  # images in that chunk
    digests: list[str | None] | None = None  # content keys, when embeddings are cached

    def pin_memory(self) -> Batch:
        self.pixels = self.pixels.pin_memory()
        return self


def make_batch(
    names: list[str],
    results: Sequence[tuple[torch.Tensor | None, str | None]],
    size: int,
    key: str = "",
    chunk_total: int = 0,
) -> Batch:
    """Stack the decoded images of one batch; failed ones keep their place via ``ok``."""
    ok = torch.tensor([t is not None for t, _ in results], dtype=torch.bool)
    good = [t for t, _ in results if t is not None]
    pixels = torch.stack(good) if good else torch.empty((0, 3, size, size), dtype=torch.uint8)
    return Batch(names, pixels, ok, [e for _, e in results], key, chunk_total)


class ItemDataset(Dataset):
    """Map-style dataset over a list of items (UI uploads, small folders)."""

    def __init__(self, items: Sequence[Item], size: int, fast_decode: bool = False) -> None:
        self.items, self.size, self.fast_decode = list(items), size, fast_decode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor | None, str | None]:
        item = self.items[index]
        return (item_name(item), *read_item(item, self.size, self.fast_decode))


class _Collate:
    """Picklable collate function (workers may be spawned, not forked)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, samples: list[tuple[str, torch.Tensor | None, str | None]]) -> Batch:
        return make_batch([s[0] for s in samples], [(s[1], s[2]) for s in samples], self.size)


def default_workers() -> int:
    """One decode worker per CPU core, keeping one for the main process."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(0, min(32, cores - 1))


class Scorer:
    """Runs JoyQuality on ``uint8`` batches: upload, normalise on the device, forward."""

    def __init__(self, model: torch.nn.Module, compile: bool = False) -> None:
        self.model = model.eval()
        self.device = model.device
        self.size = model.image_size
        self._forward = torch.compile(model, dynamic=False) if compile else model

    @torch.inference_mode()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """fp32 scores ``[n]`` on the CPU for ``uint8 [n, 3, S, S]`` pixels."""
        if pixels.shape[0] == 0:
            return torch.empty(0)
        x = normalize(pixels.to(self.device, non_blocking=True))
        return self._forward(x).float().cpu()

    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled embeddings ``[n, hidden]`` and scores ``[n]`` (fp32, CPU): the same
        forward as ``__call__``, split at the pooled output (never compiled)."""
        x = normalize(pixels.to(self.device, non_blocking=True))
        pooled = self.model.pooled(x) if pixels.shape[0] else torch.empty(0, 0)
        if not pixels.shape[0]:
            return pooled, torch.empty(0)
        return pooled.float().cpu(), self.model.head(pooled).float().cpu()

    def rows(self, batch: Batch, scores: torch.Tensor | None = None) -> list[dict]:
        """Score one batch into table rows (bucket filled in later); ``scores`` of its
        readable images when already computed."""
        scores = (self(batch.pixels) if scores is None else scores).tolist()
        it = iter(scores)
        return [
            dict(
                zip(
                    SCORE_COLUMNS,
                    (name, next(it) if ok else math.nan, None, None if ok else err),
                    strict=True,
                )
            )
            for name, ok, err in zip(batch.names, batch.ok.tolist(), batch.errors, strict=True)
        ]


def loader_options(device: torch.device, num_workers: int, prefetch: int = 4) -> dict:
    """DataLoader settings shared by every scoring path (workers, pinning, prefetch)."""
    opts: dict = {"num_workers": num_workers, "pin_memory": device.type == "cuda"}
    if num_workers > 0:
        opts["prefetch_factor"] = prefetch
    return opts


def iter_scored(
    model: torch.nn.Module,
    items: Sequence[Item],
    *,
    batch_size: int = 32,
    num_workers: int | None = None,
    compile: bool = False,
    fast_decode: bool = False,
) -> Iterator[list[dict]]:
    """Yield the rows of each batch in input order (for progress bars and streaming)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    scorer = Scorer(model, compile=compile)
    workers = default_workers() if num_workers is None else num_workers
    workers = min(workers, max(1, math.ceil(len(items) / batch_size))) if workers else 0
    loader = DataLoader(
        ItemDataset(items, scorer.size, fast_decode),
        batch_size=batch_size,
        collate_fn=_Collate(scorer.size),
        **loader_options(scorer.device, workers),
    )
    for batch in loader:
        yield scorer.rows(batch)


def score_images(
    model: torch.nn.Module,
    items: Sequence[Item],
    *,
    batch_size: int = 32,
    num_workers: int | None = None,
    calibration=None,
    progress: Callable[[int, int], None] | None = None,
    fast_decode: bool = False,
) -> list[dict]:
    """Score paths or ``(name, bytes)`` items; one row per item, in input order.

    Rows have the columns of ``SCORE_COLUMNS``; ``bucket`` is the calibration's label
    (the model's own ``calibration`` when none is given), else None. ``progress`` is
    called with (done, total) after each batch.
    """
    rows: list[dict] = []
    batches = iter_scored(
        model, items, batch_size=batch_size, num_workers=num_workers, fast_decode=fast_decode
    )
    for batch_rows in batches:
        rows.extend(batch_rows)
        if progress is not None:
            progress(len(rows), len(items))
    calibration = calibration or getattr(model, "calibration", None)
    if calibration is not None and rows:
        for row, label in zip(
            rows, calibration.labels_for([r["score"] for r in rows]), strict=True
        ):
            row["bucket"] = label
    return rows


def win_probability(s_a, s_b) -> np.ndarray | float:
    """P(A beats B) = sigmoid(s_A - s_B), computed in float64 (stable for large gaps)."""
    p = sigmoid(np.asarray(s_a, dtype=np.float64) - np.asarray(s_b, dtype=np.float64))
    return float(p) if p.ndim == 0 else p


def failed(rows: Iterable[dict]) -> list[tuple[str, str]]:
    """(name, reason) of every row that could not be scored."""
    return [(r["path"], r["error"]) for r in rows if r["error"] is not None]
