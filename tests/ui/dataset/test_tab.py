"""The Dataset tab through a launched app and gradio_client: preview, export, push, import."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from datasets import load_dataset
from gradio_client import Client, handle_file

from tests.conftest import launch_app
from tests.prefdata.fixtures import offline_hub, vote_tuples  # noqa: F401
from tests.ui.helpers import make_context, make_project

pytestmark = pytest.mark.slow


def _voted(ctx, tmp_path, n_votes: int = 30):
    project = make_project(ctx, "cats", tmp_path / "cats", n=10)
    uids = [img.uid for img in project.images]
    project.record_votes(
        [
            (
                None,
                uids[k % 10],
                uids[(k * 3 + 1) % 10],
                ("left", "right", "tie")[k % 3],
                f"user{k % 2}",
                1_700_000_000.0 + k,
                None,
                "test",
            )
            for k in range(n_votes)
            if k % 10 != (k * 3 + 1) % 10
        ]
    )
    return project


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One launched app for the module (launching costs seconds); tests use fresh names."""
    tmp_path = tmp_path_factory.mktemp("dataset-tab")
    ctx = make_context(tmp_path)
    _voted(ctx, tmp_path)
    demo, url = launch_app(ctx, tabs=("Dataset",))
    yield Client(url, verbose=False), ctx
    demo.close()


def test_endpoints_are_named(client):
    c, _ = client
    names = set(c.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {
        "/dataset_preview",
        "/dataset_export",
        "/dataset_push",
        "/dataset_import",
        "/backup_now",
        "/backup_status",
    } <= names


def test_preview_counts_and_rows(client):
    c, ctx = client
    summary, rows, card = c.predict("cats", 0.2, 0, "hash", api_name="/dataset_preview")
    votes = len(ctx.studio.project("cats").votes())
    assert f"**{votes} votes**" in summary and "train pairs" in summary
    assert rows["headers"][:3] == ["split", "image_0_uid", "image_1_uid"]
    assert rows["data"] and all(r[5].startswith("labeler-") for r in rows["data"])
    assert card.startswith("```yaml\nconfigs:\n- config_name: default")  # not a bullet list
    assert "\n```\n\n# cats: pairwise image preferences" in card
    # what the split costs, and the small project's test share raised or plainly absent
    assert "The split costs" in summary and "mixed pairs left out" in summary
    assert "Test share raised from 20%" in summary or "No usable test set" in summary


@pytest.mark.parametrize("fmt", ["parquet", "parquet-embedded"])
def test_export_parquet_zip_loads_with_datasets(client, tmp_path, fmt):
    c, _ = client
    path = c.predict("cats", fmt, 0.2, 0, "publish", "", api_name="/dataset_export")
    out = tmp_path / "unzipped"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(out)
    loaded = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows > 0
    if fmt == "parquet-embedded":  # Pick-a-Pic style: both images in every pair row
        assert loaded["train"][0]["image_0"].size == (40, 30)
        return
    images = load_dataset(str(out), "images", split="train", cache_dir=str(tmp_path / "cache"))
    row_of = {uid: i for i, uid in enumerate(images["uid"])}
    assert images[row_of[loaded["train"][0]["image_0_uid"]]]["image"].size == (40, 30)


def test_export_needs_the_owner(client, monkeypatch):
    c, ctx = client
    monkeypatch.setattr(ctx, "admin_token", "s3cret")  # read at every call
    with pytest.raises(Exception, match="admin token"):
        c.predict("cats", "joyquality", 0.1, 0, "publish", "wrong", api_name="/dataset_export")
    path = c.predict("cats", "joyquality", 0.1, 0, "publish", "s3cret", api_name="/dataset_export")
    assert "joyquality.json" in zipfile.ZipFile(path).namelist()


def test_push_without_token_says_so_and_changes_nothing(client, offline_hub):  # noqa: F811
    c, ctx = client
    before = vote_tuples(ctx.studio.project("cats"), include_undone=True)
    with pytest.raises(Exception, match="no Hugging Face token"):
        c.predict("cats", "me/prefs", True, "", 0.1, 0, "publish", "", api_name="/dataset_push")
    assert vote_tuples(ctx.studio.project("cats"), include_undone=True) == before


def test_import_an_exported_zip_into_a_new_project(client):
    c, ctx = client
    path = c.predict("cats", "parquet", 0.0, 0, "publish", "", api_name="/dataset_export")
    status = c.predict("", [handle_file(path)], "cats copy", "", "", api_name="/dataset_import")
    assert "project 'cats copy'" in status
    copy, original = ctx.studio.project("cats copy"), ctx.studio.project("cats")
    assert vote_tuples(copy) == vote_tuples(original)
    assert all(Path(img.path).is_relative_to(ctx.uploads_dir) for img in copy.images)


def test_import_of_a_bad_file_names_the_problem(client, tmp_path):
    c, _ = client
    bad = tmp_path / "notes.json"
    bad.write_text('{"pairs": []}')
    with pytest.raises(Exception, match="not a JoyQuality dataset"):
        c.predict("", [handle_file(str(bad))], "", "", "", api_name="/dataset_import")


def test_backup_status_without_a_repo(client):
    c, _ = client
    assert "No live backup" in c.predict(api_name="/backup_status")
    assert "No live backup" in c.predict("", api_name="/backup_now")
