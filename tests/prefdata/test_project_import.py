"""Importing preference datasets: our export, Pick-a-Pic, TRL, JoyQuality; bad input."""

from __future__ import annotations

import io
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefdata.hub import HubError
from prefdata.joyquality_json import export_joyquality
from prefdata.ours import build_preference_dataset, save_parquet
from prefdata.project_import import import_dataset
from ranker.errors import ImportFormatError, StudioError
from ranker.service import Studio
from tests.prefdata.fixtures import (  # noqa: F401
    offline_hub,
    ratings,
    vote_tuples,
    voted_project,
)


@pytest.fixture
def source(tmp_path):
    studio, project = voted_project(tmp_path, n_images=14, n_votes=50)
    uids = [img.uid for img in project.images]
    project.set_excluded(uids[2], True, "blurry")
    project.store.set_priors(project.row.id, {uids[5]: (3.0, 4.0)})
    project.update()  # reload: the pre-ranking is part of the ratings
    project.update(beta=3.5)  # a non-default setting must travel too
    return studio, project


@pytest.mark.parametrize("test_fraction", [0.0, 0.3])
def test_export_then_import_gives_identical_votes_and_ratings(source, tmp_path, test_fraction):
    _, project = source
    folder = save_parquet(
        build_preference_dataset(project, test_fraction, seed=1), tmp_path / "export"
    )
    fresh = Studio(tmp_path / "fresh.db")
    report = import_dataset(fresh, folder, images_dir=tmp_path / "imported")
    assert report.project == "demo" and report.votes_added == 50 and not report.bad_rows
    copy = fresh.project("demo")
    assert vote_tuples(copy) == vote_tuples(project)
    assert ratings(copy) == ratings(project)
    assert copy.row.instruction == project.row.instruction
    assert copy.settings == project.settings
    assert all(img.path.startswith(str(tmp_path / "imported")) for img in copy.images)


def test_import_again_resumes_without_repeats(source, tmp_path):
    _, project = source
    fresh = Studio(tmp_path / "fresh.db")
    first = save_parquet(build_preference_dataset(project, 0.0), tmp_path / "v1")
    import_dataset(fresh, first, images_dir=tmp_path / "imported")
    uids = [img.uid for img in project.images]
    project.record_votes([(None, uids[0], uids[1], "right", "ann", 1.8e9, None, "app")])
    second = save_parquet(build_preference_dataset(project, 0.0, labelers="hash"), tmp_path / "v2")
    report = import_dataset(fresh, second, images_dir=tmp_path / "imported")
    assert (report.votes_added, report.votes_present) == (1, 50)
    copy = fresh.project("demo")
    assert [v[:3] + v[4:6] for v in vote_tuples(copy)] == [
        v[:3] + v[4:6] for v in vote_tuples(project)
    ]
    assert ratings(copy) == ratings(project)


def test_zip_of_an_export_imports(source, tmp_path):
    _, project = source
    folder = save_parquet(build_preference_dataset(project, 0.2), tmp_path / "export")
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*"):
            zf.write(path, path.relative_to(folder))
    report = import_dataset(
        Studio(tmp_path / "z.db"), archive, images_dir=tmp_path / "imp", project="zipped"
    )
    assert report.project == "zipped" and report.votes_added == 50


def _png(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i * 40 % 256, 7, 9)).save(buf, "PNG")
    return buf.getvalue()


def _write(path, columns: dict) -> None:
    pq.write_table(pa.table(columns), path)


def test_pickapic_columns_with_ties_and_order(tmp_path):
    imgs = [_png(i) for i in range(4)]
    _write(
        tmp_path / "train-0.parquet",
        {
            "jpg_0": [imgs[0], imgs[1], imgs[2]],
            "jpg_1": [imgs[1], imgs[2], imgs[3]],
            "label_0": [1.0, 0.5, 0.0],
            "label_1": [0.0, 0.5, 1.0],
            "user_id": [7, 8, 7],
            "created_at": pa.array(
                [3_000_000_000, 1_000_000_000, 2_000_000_000], pa.timestamp("s")
            ),
            "caption": ["a", "b", "c"],
        },
    )
    studio = Studio(tmp_path / "p.db")
    report = import_dataset(
        studio,
        tmp_path / "train-0.parquet",
        images_dir=tmp_path / "imp",
        project="pap",
        instruction="Which fits the prompt?",
    )
    assert report.layout.startswith("Pick-a-Pic") and report.votes_added == 3
    votes = studio.project("pap").votes()
    assert [v.outcome for v in votes] == ["left", "tie", "right"]  # file order kept
    assert [v.created_at for v in votes] == [3e9, 1e9, 2e9]
    assert [v.labeler for v in votes] == ["user-7", "user-8", "user-7"]
    assert studio.project("pap").row.instruction == "Which fits the prompt?"


def test_folder_of_splits_is_replayed_in_time_order(tmp_path):
    imgs = [_png(i) for i in range(3)]
    folder = tmp_path / "ds" / "data"
    folder.mkdir(parents=True)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for split, times in (("train", [1.0, 3.0]), ("test", [2.0, 4.0])):
        _write(
            folder / f"{split}-00000-of-00001.parquet",
            {
                "image_0": pa.array([{"bytes": imgs[0], "path": "a.png"}] * 2, image),
                "image_1": pa.array(
                    [{"bytes": imgs[1 if split == "train" else 2], "path": None}] * 2, image
                ),
                "label_0": [1.0, 0.0],
                "label_1": [0.0, 1.0],
                "created_at": times,
            },
        )
    studio = Studio(tmp_path / "t.db")
    import_dataset(studio, tmp_path / "ds", images_dir=tmp_path / "imp", project="t")
    assert [v.created_at for v in studio.project("t").votes()] == [1.0, 2.0, 3.0, 4.0]


def test_trl_chosen_rejected(tmp_path):
    imgs = [_png(i) for i in range(3)]
    _write(tmp_path / "trl.parquet", {"chosen": [imgs[0], imgs[1]], "rejected": [imgs[1], imgs[2]]})
    studio = Studio(tmp_path / "t.db")
    report = import_dataset(studio, tmp_path / "trl.parquet", images_dir=tmp_path / "imp")
    votes = studio.project("trl").votes()
    assert report.layout.startswith("TRL") and [v.outcome for v in votes] == ["left", "left"]
    assert {v.labeler for v in votes} == {"import"}


def test_joyquality_json_round_trip(source, tmp_path):
    _, project = source
    ds = build_preference_dataset(project, 0.0)
    path = export_joyquality(ds, tmp_path / "jq", relative_paths=True)
    studio = Studio(tmp_path / "j.db")
    report = import_dataset(studio, path, images_dir=tmp_path / "imp", project="jq")
    decided = [v for v in project.votes() if v.outcome != "tie"]
    got = studio.project("jq").votes()
    assert report.votes_added == len(decided)
    assert [(v.left_uid, v.right_uid) for v in got] == [v.winner_loser for v in decided]


def test_missing_columns_are_named(tmp_path):
    _write(tmp_path / "x.parquet", {"image_0": [_png(0)], "image_1": [_png(1)], "label_0": [1.0]})
    with pytest.raises(ImportFormatError, match="lacks the columns label_1"):
        import_dataset(
            Studio(tmp_path / "x.db"), tmp_path / "x.parquet", images_dir=tmp_path / "imp"
        )
    _write(tmp_path / "y.parquet", {"prompt": ["p"], "score": [1.0]})
    with pytest.raises(ImportFormatError, match="not a preference table.*chosen, rejected"):
        import_dataset(
            Studio(tmp_path / "y.db"), tmp_path / "y.parquet", images_dir=tmp_path / "imp"
        )


def test_rows_that_do_not_decode_are_reported_by_row(tmp_path):
    good = [_png(i) for i in range(3)]
    _write(
        tmp_path / "train.parquet",
        {
            "image_0": [good[0], b"not an image", good[1], good[2][:40]],
            "image_1": [good[1], good[2], good[2], good[0]],
            "label_0": [1.0, 1.0, 0.0, 1.0],
            "label_1": [0.0, 0.0, 1.0, 0.0],
        },
    )
    studio = Studio(tmp_path / "b.db")
    report = import_dataset(studio, tmp_path / "train.parquet", images_dir=tmp_path / "imp")
    assert report.votes_added == 2 and len(report.bad_rows) == 2
    assert report.bad_rows[0].startswith("train.parquet row 1 image_0: not an image")
    assert report.bad_rows[1].startswith("train.parquet row 3 image_0: ")
    assert "2 rows left out" in report.summary()


def test_nothing_usable_is_an_error_and_writes_no_project(tmp_path):
    _write(tmp_path / "bad.parquet", {"chosen": [b"x"], "rejected": [b"y"]})
    studio = Studio(tmp_path / "n.db")
    with pytest.raises(StudioError, match="(?s)no usable votes.*row 0 chosen"):
        import_dataset(studio, tmp_path / "bad.parquet", images_dir=tmp_path / "imp")
    assert studio.list_projects() == []


def test_bad_joyquality_json(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"pairs": []}))
    with pytest.raises(ImportFormatError, match="not a JoyQuality dataset"):
        import_dataset(Studio(tmp_path / "d.db"), tmp_path / "d.json", images_dir=tmp_path)


def test_unknown_repo_id_offline_says_which(tmp_path, offline_hub):  # noqa: F811
    with pytest.raises(HubError, match="cannot download someone/missing-dataset.*offline"):
        import_dataset(
            Studio(tmp_path / "u.db"), "someone/missing-dataset", images_dir=tmp_path / "imp"
        )
    with pytest.raises(HubError, match="not a Hub repo id"):
        import_dataset(
            Studio(tmp_path / "u.db"), "no such file.parquet", images_dir=tmp_path / "imp"
        )
