"""The sharded scoring CLI: 2 processes give the 1-process table; reruns resume."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from common.contracts import SCORE_COLUMNS
from model.joyquality import build_tiny_model, load_model
from model.score import main
from model.shards import done_keys, parts_dir_for, score_shard
from model.sources import open_source
from tests.model.helpers import make_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    good, broken = make_folder(root / "imgs", 17)
    build_tiny_model(seed=9).save_pretrained(root / "model")
    return root, good, broken


def run_cli(root: Path, out: Path, *extra: str) -> int:
    args = [str(root / "imgs"), "--out", str(out), "--model", str(root / "model"), "-q"]
    return main([*args, "--chunk-size", "4", "--batch-size", "3", "--workers", "0", *extra])


def read(out: Path) -> list[dict]:
    """Rows with NaN scores made comparable (NaN != NaN)."""
    rows = pq.read_table(out).to_pylist()
    return [{**r, "score": None if r["score"] != r["score"] else r["score"]} for r in rows]


def test_one_process_table(setup, tmp_path, capsys):
    root, good, broken = setup
    out = tmp_path / "scores.parquet"
    assert run_cli(root, out) == 0
    table = pq.read_table(out)
    assert tuple(table.column_names) == SCORE_COLUMNS
    rows = table.to_pylist()
    assert len(rows) == len(good) + len(broken)
    errors = {r["path"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {str(p) for p in broken}
    assert all(r["bucket"] is None for r in rows if r["error"])
    assert {r["bucket"] for r in rows if not r["error"]} <= {
        "worst quality",
        "low quality",
        "average quality",
        "high quality",
        "best quality",
    }
    assert "merged 20 rows (3 unreadable)" in capsys.readouterr().out
    assert (
        json.loads((tmp_path / "scores.parquet.calibration.json").read_text())["method"]
        == "equal_width"
    )


def test_two_processes_by_env_vars_equal_one_process(setup, tmp_path, monkeypatch):
    root, *_ = setup
    single, double = tmp_path / "one.parquet", tmp_path / "two.parquet"
    assert run_cli(root, single) == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert run_cli(root, double) == 0
    assert not double.exists()  # rank 0 has not finished: no merge yet
    monkeypatch.setenv("RANK", "0")
    assert run_cli(root, double) == 0
    assert read(double) == read(single)


@pytest.mark.slow  # two Python processes importing torch: about 20 s on 2 cores
def test_two_real_processes_equal_one_process(setup, tmp_path):
    """Two concurrent OS processes, as `accelerate launch`/`torchrun` start them."""
    root, *_ = setup
    single, double = tmp_path / "one.csv", tmp_path / "two.csv"
    assert run_cli(root, single) == 0
    cmd = [sys.executable, "-m", "model.score", str(root / "imgs"), "--out", str(double),
           "--model", str(root / "model"), "--chunk-size", "4", "--batch-size", "3", "--workers", "0", "-q"]  # fmt: skip
    env = {**os.environ, "WORLD_SIZE": "2", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
        for r in (0, 1)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert double.read_text() == single.read_text()


def test_rerun_after_interruption_does_not_rescore(setup, tmp_path, monkeypatch):
    root, *_ = setup
    out = tmp_path / "scores.parquet"
    parts = parts_dir_for(out)
    model = load_model(root / "model", device="cpu")
    reference = tmp_path / "ref.parquet"
    assert run_cli(root, reference) == 0

    class Interrupted(Exception):
        pass

    def stop_after_two(key: str, n: int) -> None:
        if len(done_keys(parts)) >= 2:
            raise Interrupted

    parts.mkdir()
    source = open_source(str(root / "imgs"))
    with pytest.raises(Interrupted):
        score_shard(model, source, parts, chunk_size=4, batch_size=3, on_chunk=stop_after_two)
    (parts / "manifest.json").write_text((parts_dir_for(reference) / "manifest.json").read_text())
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*")}
    assert len(before) == 2
    decoded = []
    import model.shards as shards

    real_read = shards.read_item
    monkeypatch.setattr(
        shards, "read_item", lambda item, *rest: decoded.append(item) or real_read(item, *rest)
    )
    assert run_cli(root, out) == 0
    assert len(decoded) == 20 - 8  # only the unfinished chunks were read again
    assert {
        p.name: p.stat().st_mtime_ns for p in parts.glob("part-*") if p.name in before
    } == before
    assert read(out) == read(reference)
    decoded.clear()
    assert run_cli(root, out) == 0 and decoded == []  # a finished job rescans nothing


def test_different_job_in_same_parts_folder_is_refused(setup, tmp_path, capsys):
    root, *_ = setup
    out = tmp_path / "s.parquet"
    assert run_cli(root, out) == 0
    assert run_cli(root, out, "--chunk-size", "5") == 2
    assert "different job" in capsys.readouterr().err
    assert run_cli(root, out, "--chunk-size", "5", "--overwrite") == 0


def test_file_list_quantile_buckets_and_labels(setup, tmp_path):
    root, good, _ = setup
    listing = tmp_path / "list.txt"
    listing.write_text("# images\n" + "\n".join(str(p) for p in good[:8]) + "\n\nmissing.jpg\n")
    out = tmp_path / "l.parquet"
    args = [str(listing), "--out", str(out), "--model", str(root / "model"), "--workers", "0", "-q"]
    assert main([*args, "--buckets", "quantile", "--labels", "bad,good"]) == 0
    rows = read(out)
    assert (
        rows[-1]["path"] == str(tmp_path / "missing.jpg") and rows[-1]["error"] == "file not found"
    )
    assert [r["bucket"] for r in rows[:-1]].count("bad") == 4


def test_method_b_from_pairs(setup, tmp_path):
    root, good, _ = setup
    pairs = {"train": [], "test": [[str(good[i]), str(good[i + 1]), 1] for i in range(0, 12, 2)]}
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    out = tmp_path / "b.parquet"
    assert run_cli(root, out, "--pairs", str(tmp_path / "pairs.json")) == 0
    cal = json.loads((tmp_path / "b.parquet.calibration.json").read_text())
    assert cal["method"] == "sigmoid" and cal["tau"] > 0 and cal["info"]["n_pairs"] == 6
    meta = pq.read_schema(out).metadata
    assert json.loads(meta[b"calibration"])["b"] == pytest.approx(cal["b"])


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), i * 10, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("world", "workers"), [(1, 0), (2, 0), (1, 2)])
def test_streamed_dataset_shards(tmp_path, setup, world, workers):
    import datasets

    root, *_ = setup
    features = datasets.Features({"image": datasets.Image(), "uid": datasets.Value("string")})
    rows = [{"image": {"bytes": _png(i), "path": None}, "uid": f"u{i}"} for i in range(9)]
    rows[4]["image"] = {"bytes": b"junk", "path": None}
    ds = datasets.Dataset.from_list(rows, features=features)
    (tmp_path / "ds" / "data").mkdir(parents=True)
    ds.select(range(5)).to_parquet(tmp_path / "ds" / "data" / "train-00000-of-00002.parquet")
    ds.select(range(5, 9)).to_parquet(tmp_path / "ds" / "data" / "train-00001-of-00002.parquet")
    out = tmp_path / f"ds{world}.parquet"
    base = [str(tmp_path / "ds"), "--dataset", "--id-column", "uid", "--out", str(out),
            "--model", str(root / "model"), "--chunk-size", "2", "--workers", str(workers), "-q"]  # fmt: skip
    for rank in range(world):
        assert main([*base, "--rank", str(rank), "--world", str(world)]) == 0
    table = read(out)
    assert sorted(r["path"] for r in table) == [f"u{i}" for i in range(9)]
    assert [r["path"] for r in table if r["error"]] == ["u4"]
    keys = done_keys(parts_dir_for(out))
    assert {"00000-complete", "00001-complete"} <= keys
