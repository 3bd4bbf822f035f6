"""The published layout (images once, pairs by uid) round-trips; older layouts import."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prefdata.ours import build_preference_dataset, save_parquet
from prefdata.pickapic import export_embedded
from prefdata.project_import import import_dataset
from ranker.service import Studio
from tests.prefdata.fixtures import ratings, vote_tuples, voted_project


@pytest.fixture
def project(tmp_path):
    studio, project = voted_project(tmp_path, n_images=14, n_votes=60)
    project.add_files(_extra_image(tmp_path))  # an image without votes travels too
    return project


def _extra_image(tmp_path) -> list[Path]:
    from PIL import Image

    path = tmp_path / "unvoted.png"
    Image.new("RGB", (24, 16), (1, 200, 3)).save(path)
    return [path]


def _images(project) -> dict[str, bytes]:
    return {img.uid: Path(img.path).read_bytes() for img in project.images}


def test_publish_then_import_keeps_every_vote_and_image(project, tmp_path):
    folder = save_parquet(build_preference_dataset(project, 0.3, seed=3), tmp_path / "pub")
    fresh = Studio(tmp_path / "fresh.db")
    report = import_dataset(fresh, folder, images_dir=tmp_path / "imported")
    assert report.layout == "Preference Studio dataset" and not report.bad_rows
    copy = fresh.project("demo")
    assert vote_tuples(copy) == vote_tuples(project)
    assert _images(copy) == _images(project)  # byte for byte, the unvoted one included
    assert len(_images(copy)) == 15
    assert ratings(copy) == ratings(project)


def test_dataset_published_before_images_were_stored_once_imports(project, tmp_path):
    """Version 1: pairs with both images embedded, plus the images and votes tables."""
    ds = build_preference_dataset(project, 0.3, seed=3)
    new = save_parquet(ds, tmp_path / "new")
    old = export_embedded(ds, tmp_path / "old")
    for table in ("images", "votes"):
        shutil.copytree(new / table, old / table)
    report = import_dataset(Studio(tmp_path / "o.db"), old, images_dir=tmp_path / "imp")
    assert report.votes_added == 60 and not report.bad_rows
    copy = Studio(tmp_path / "o.db").project("demo")
    assert vote_tuples(copy) == vote_tuples(project)
    assert _images(copy) == _images(project)


def test_embedded_pairs_alone_import(project, tmp_path):
    """Pick-a-Pic style: only pair rows with embedded images, no log: the split pairs."""
    ds = build_preference_dataset(project, 0.0)
    folder = export_embedded(ds, tmp_path / "pickapic")
    report = import_dataset(Studio(tmp_path / "p.db"), folder, images_dir=tmp_path / "imp")
    assert report.layout.startswith("image_0/image_1") and not report.bad_rows
    copy = Studio(tmp_path / "p.db").project("demo")
    assert [v[:6] for v in vote_tuples(copy)] == [v[:6] for v in vote_tuples(project)]


def test_pairs_by_uid_with_the_images_table_import_without_the_log(project, tmp_path):
    """A one-split download: pairs by uid and the images table, no votes table."""
    folder = save_parquet(build_preference_dataset(project, 0.0), tmp_path / "pub")
    shutil.rmtree(folder / "votes")
    report = import_dataset(Studio(tmp_path / "u.db"), folder, images_dir=tmp_path / "imp")
    assert report.layout.startswith("image_0_uid") and not report.bad_rows
    copy = Studio(tmp_path / "u.db").project("demo")
    assert [v[:6] for v in vote_tuples(copy)] == [v[:6] for v in vote_tuples(project)]
    shutil.rmtree(folder / "images")
    with pytest.raises(Exception, match="not in the images table"):
        import_dataset(Studio(tmp_path / "v.db"), folder, images_dir=tmp_path / "imp2")
