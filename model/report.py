"""Presenting a scoring run: tables on disk, a histogram table, a summary.

The histogram is a table (bin centre, images, bucket) for one of Gradio's own plot
components (``gr.BarPlot``), which draws the axes and colours the bars by bucket.
"""

from __future__ import annotations

import html
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
