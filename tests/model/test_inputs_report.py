"""Upload handling (zips, limits) and the run report (tables, histogram, summary)."""

from __future__ import annotations

import math
import sys
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from common.contracts import SCORE_COLUMNS
from model.inputs import UploadError, upload_items, zip_items
from model.report import histogram, histogram_frame, summary_markdown, write_tables
from tests.model.helpers import make_image


def test_zip_members_are_read_not_extracted(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../evil.jpg", b"x")
        zf.writestr("dir/", b"")
        zf.writestr(".hidden.png", b"x")
        zf.writestr("__MACOSX/dir/._a.png", b"x")
        zf.writestr("dir/a.png", b"abc")
    items = zip_items(archive)
    assert items == [("a.zip/dir/a.png", b"abc")]  # "..", hidden and metadata entries left out
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_zip_limits_and_bad_zip(tmp_path):
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", b"0123456789")
    with pytest.raises(UploadError, match="at most 2"):
        zip_items(archive, max_members=2)
    with pytest.raises(UploadError, match="unpacks to"):
        zip_items(archive, max_bytes=20)
    (tmp_path / "c.zip").write_bytes(b"not a zip")
    with pytest.raises(UploadError, match="not a readable zip"):
        upload_items([tmp_path / "c.zip"])


def test_plain_uploads_keep_their_names(tmp_path):
    img = make_image(tmp_path / "photo.png")
    assert upload_items([img]) == [("photo.png", str(img))]


ROWS = [
    {"path": "a.jpg", "score": 2.0, "bucket": "best quality", "error": None},
    {"path": "b.jpg", "score": -1.0, "bucket": "worst quality", "error": None},
    {"path": "c.jpg", "score": math.nan, "bucket": None, "error": "not an image (unknown format)"},
]


def test_write_tables(tmp_path):
    csv_path, parquet_path = write_tables(ROWS, tmp_path / "out")
    table = pq.read_table(parquet_path)
    assert tuple(table.column_names) == SCORE_COLUMNS and table.num_rows == 3
    assert csv_path.read_text().splitlines()[0] == '"path","score","bucket","error"'


def test_histogram_and_its_plot_table():
    counts, edges = histogram([0.0, 1.0, 1.0, math.nan], bins=2)
    assert counts.tolist() == [1, 2] and edges.tolist() == [0.0, 0.5, 1.0]
    assert histogram([3.0, 3.0])[0].sum() == 2
    frame = histogram_frame(
        np.linspace(0, 4, 50), lambda xs: ["low" if x < 2 else "high" for x in xs], bins=4
    )
    assert frame["images"].tolist() == [13, 12, 12, 13]
    assert frame["bucket"].tolist() == ["low", "low", "high", "high"]
    assert histogram_frame([]).empty


def test_summary_lists_failures_and_buckets():
    text = summary_markdown(ROWS, labels=("worst quality", "best quality"))
    assert "Scored **2** of 3 images; **1 unreadable**." in text
    assert "`c.jpg`: not an image" in text
    assert text.index("best quality") < text.index("worst quality")


def test_building_the_tab_does_not_import_torch(tmp_path):
    """The tab is built at app start: torch and the model load only when a user scores."""
    import subprocess
    from pathlib import Path

    code = (
        "import sys, gradio as gr, model; from ui.context import StudioContext; "
        "from ui.scoring.tab import build_scoring_tab; "
        f"ctx = StudioContext(data_dir={str(tmp_path)!r}); "
        "blocks = gr.Blocks(); blocks.__enter__(); build_scoring_tab(ctx); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
