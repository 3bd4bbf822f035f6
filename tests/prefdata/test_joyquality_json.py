"""One JoyQuality JSON reader: upstream's labels (1, -1), our tie (0.5), bad rows named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prefdata.joyquality_json import (
    JoyQualityFormatError,
    PairRow,
    RowError,
    iter_rows,
    label_probability,
    read_document,
)
from prefdata.project_import import import_dataset
from ranker.intake import content_uid
from ranker.service import Studio
from tests.ranker.helpers import make_images
from training.data import DataError, read_json_pairs


@pytest.mark.parametrize(("label", "p"), [(1, 1.0), (-1, 0.0), (0.5, 0.5), (1.0, 1.0), (-1.0, 0.0)])
def test_labels_as_upstream_means_them(label, p):
    assert label_probability(label) == p


@pytest.mark.parametrize(
    ("label", "match"),
    [
        (0, "upstream reads 0 as a tie"),
        (2, "must be 1 .first wins., -1 .second wins. or 0.5"),
        ("1", "not a number"),
        (True, "not a number"),
        (None, "not a number"),
    ],
)
def test_other_labels_are_refused(label, match):
    with pytest.raises(JoyQualityFormatError, match=match):
        label_probability(label)


def test_rows_resolve_paths_in_one_place(tmp_path):
    doc = {"train": [["a.png", "/abs/b.png", -1], ["a.png", "b.png", 7], ["a.png"]]}
    seen = []

    def gate(cell: str, base: Path) -> str:
        seen.append(cell)
        if cell.startswith("/abs"):
            raise ValueError(f"{cell} is outside the allowed folders")
        return str(base / cell)

    rows = list(iter_rows(doc, tmp_path, gate))
    assert rows[0] == RowError("train", 0, "/abs/b.png is outside the allowed folders")
    assert isinstance(rows[1], RowError) and str(rows[1]).startswith("train[1]: label 7")
    assert str(rows[2]).startswith("train[2]: expected [winner_path, loser_path, label]")
    assert seen == ["a.png", "/abs/b.png", "a.png", "b.png"]
    plain = list(iter_rows({"test": [["a.png", "b.png"]]}, tmp_path))
    assert plain == [PairRow("test", 0, str(tmp_path / "a.png"), str(tmp_path / "b.png"), 1.0)]


def test_not_a_joyquality_file(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(JoyQualityFormatError, match="not a JoyQuality dataset"):
        read_document(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{nope")
    with pytest.raises(JoyQualityFormatError, match="not readable JSON"):
        read_document(tmp_path / "y.json")


def _upstream_file(tmp_path) -> tuple[Path, list[str]]:
    """A file exactly as upstream's train.py reads it: absolute paths, labels 1 and -1."""
    paths = [str(p.resolve()) for p in make_images(tmp_path / "imgs", 6)]
    doc = {
        "train": [[paths[0], paths[1], 1], [paths[2], paths[0], -1], [paths[1], paths[2], 1]],
        "test": [[paths[3], paths[4], -1], [paths[5], paths[3], 1]],
    }
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(doc))
    return path, paths


def test_training_and_import_read_upstreams_file_alike(tmp_path):
    path, paths = _upstream_file(tmp_path)
    data = read_json_pairs(path)
    winners = [data.keys[a] if y == 1 else data.keys[b] for a, b, y in
               zip(data.train.a, data.train.b, data.train.label, strict=True)]  # fmt: skip
    assert winners == [paths[0], paths[0], paths[1]]
    assert np.array_equal(data.test.label, [0.0, 1.0])

    studio = Studio(tmp_path / "s.db")
    report = import_dataset(studio, path, images_dir=tmp_path / "imp", project="jq")
    assert report.votes_added == 5 and not report.bad_rows
    uid = {p: content_uid(Path(p).read_bytes()) for p in paths}
    got = [v.winner_loser for v in studio.project("jq").votes()]
    assert got == [
        (uid[paths[0]], uid[paths[1]]),
        (uid[paths[0]], uid[paths[2]]),
        (uid[paths[1]], uid[paths[2]]),
        (uid[paths[4]], uid[paths[3]]),
        (uid[paths[5]], uid[paths[3]]),
    ]


def test_bad_labels_name_the_row_in_training_and_import(tmp_path):
    path, paths = _upstream_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["train"][1][2] = 0
    doc["test"][0][2] = "second"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"dataset.json train\[1\]: label 0 .*tie"):
        read_json_pairs(path)
    studio = Studio(tmp_path / "s.db")
    report = import_dataset(studio, path, images_dir=tmp_path / "imp", project="jq")
    assert report.votes_added == 3
    assert [r.split(":")[0] for r in report.bad_rows] == ["train[1]", "test[0]"]
    assert "not a number" in report.bad_rows[1]
