"""Presenting a scoring run: tables on disk, a histogram with bucket edges, a summary.

The histogram is a small self-contained SVG (no plotting library needed): bars of the
score distribution, one dashed line per bucket edge, and the bucket labels.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from pathlib import Path

import numpy as np

from common.contracts import SCORE_COLUMNS


def rows_table(rows: list[dict]):
    """Score rows as a pyarrow table with the ``SCORE_COLUMNS`` schema."""
    import pyarrow as pa

    types = (pa.string(), pa.float64(), pa.string(), pa.string())
    schema = pa.schema(list(zip(SCORE_COLUMNS, types, strict=True)))
    return pa.table({c: [r[c] for r in rows] for c in SCORE_COLUMNS}, schema=schema)


def write_tables(rows: list[dict], folder: Path, stem: str = "scores") -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.parquet`` into folder; returns both paths."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    table = rows_table(rows)
    csv_path, parquet_path = folder / f"{stem}.csv", folder / f"{stem}.parquet"
    pacsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def histogram(scores, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of the finite scores (one bin when all are equal)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    lo, hi = float(s.min()), float(s.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return np.histogram(s, bins=bins, range=(lo, hi))


def histogram_frame(scores, bucket_of=None, bins: int = 20):
    """The histogram as a table for a plot component: bin centre, images, bucket.

    ``bucket_of(centres)`` names the bucket of each bin centre (colours the bars).
    """
    import pandas as pd

    counts, edges = histogram(scores, bins=bins)
    if counts.size == 0:
        return pd.DataFrame({"score": [], "images": [], "bucket": []})
    centres = (edges[:-1] + edges[1:]) / 2
    buckets = list(bucket_of(centres.tolist())) if bucket_of else ["all"] * centres.size
    return pd.DataFrame(
        {"score": [f"{c:.3g}" for c in centres], "images": counts.astype(int), "bucket": buckets}
    )


def histogram_svg(
    scores,
    edges: list[float] = (),
    labels: tuple[str, ...] = (),
    width: int = 640,
    height: int = 220,
) -> str:
    """An SVG histogram of the scores with dashed bucket edges and bucket labels."""
    counts, bin_edges = histogram(scores)
    if counts.size == 0:
        return "<p>No scores to plot.</p>"
    pad_l, pad_r, pad_t, pad_b = 36, 12, 28, 28
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    lo, hi = float(bin_edges[0]), float(bin_edges[-1])
    top = max(int(counts.max()), 1)

    def x(v: float) -> float:
        return pad_l + (v - lo) / (hi - lo) * w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="score histogram">'
    ]
    bar_w = w / len(counts)
    for i, c in enumerate(counts):
        bh = c / top * h
        parts.append(
            f'<rect x="{pad_l + i * bar_w:.1f}" y="{pad_t + h - bh:.1f}" width="{max(bar_w - 1, 0.5):.1f}" height="{bh:.1f}" fill="#6b8cce"><title>{c} images</title></rect>'
        )
    inner = [e for e in edges if lo <= e <= hi and math.isfinite(e)]
    for e in inner:
        parts.append(
            f'<line x1="{x(e):.1f}" x2="{x(e):.1f}" y1="{pad_t - 4}" y2="{pad_t + h}" stroke="#d9534f" stroke-dasharray="4 3"/>'
        )
    if labels and len(labels) == len(edges) + 1:
        bounds = [lo, *[min(max(e, lo), hi) for e in edges], hi]
        for label, a, b in zip(labels, bounds, bounds[1:], strict=False):
            if b - a > (hi - lo) * 0.06:
                parts.append(
                    f'<text x="{(x(a) + x(b)) / 2:.1f}" y="{pad_t - 10}" font-size="10" text-anchor="middle">{html.escape(label)}</text>'
                )
    axis_y = pad_t + h
    parts.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{axis_y}" y2="{axis_y}" stroke="#555"/>')
    for v in np.linspace(lo, hi, 5):
        parts.append(
            f'<text x="{x(v):.1f}" y="{axis_y + 16}" font-size="10" text-anchor="middle">{v:.2f}</text>'
        )
    parts.append(f'<text x="4" y="{pad_t + 8}" font-size="10">{top}</text>')
    parts.append("</svg>")
    return "".join(parts)


def summary_markdown(rows: list[dict], labels: tuple[str, ...] = (), max_failures: int = 20) -> str:
    """Counts per bucket and the unreadable images by name and reason."""
    ok = [r for r in rows if r["error"] is None]
    bad = [r for r in rows if r["error"] is not None]
    lines = [
        f"Scored **{len(ok)}** of {len(rows)} images"
        + (f"; **{len(bad)} unreadable**." if bad else ".")
    ]
    if ok:
        scores = np.array([r["score"] for r in ok])
        lines.append(
            f"Scores from {scores.min():.3f} to {scores.max():.3f} (mean {scores.mean():.3f})."
        )
    counts = Counter(r["bucket"] for r in ok if r["bucket"] is not None)
    if counts:
        order = list(labels) or sorted(counts)
        lines.append("")
        lines.append("| bucket | images |\n|---|---|")
        lines.extend(f"| {html.escape(lab)} | {counts.get(lab, 0)} |" for lab in reversed(order))
    if bad:
        lines.append("")
        lines.append("Unreadable:")
        lines.extend(
            f"- `{html.escape(r['path'])}`: {html.escape(r['error'])}" for r in bad[:max_failures]
        )
        if len(bad) > max_failures:
            lines.append(f"- ... and {len(bad) - max_failures} more (see the downloadable table)")
    return "\n".join(lines)
