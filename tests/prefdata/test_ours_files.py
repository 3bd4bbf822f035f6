"""The preference dataset as datasets objects and files: Parquet (images once, pairs by
uid), the opt-in embedded export, JoyQuality JSON, TRL."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from datasets import load_dataset
from PIL import Image

from common.contracts import (
    EMBEDDED_IMAGE_COLUMNS,
    IMAGES_COLUMNS,
    IMAGES_EXTRA_COLUMNS,
    PAIRS_COLUMNS,
    PAIRS_EXTRA_COLUMNS,
    TRL_COLUMNS,
    VOTES_COLUMNS,
)
from prefdata.joyquality_json import export_joyquality
from prefdata.ours import build_preference_dataset, save_parquet
from prefdata.pickapic import export_embedded
from prefdata.trl import export_trl
from tests.prefdata.fixtures import voted_project


@pytest.fixture
def project(tmp_path):
    return voted_project(tmp_path, n_images=20, n_votes=90)[1]


def test_columns_follow_the_contract(project):
    ds = build_preference_dataset(project, 0.2, seed=0)
    assert tuple(ds["train"].column_names) == PAIRS_COLUMNS + PAIRS_EXTRA_COLUMNS
    assert tuple(ds["images"].column_names) == IMAGES_COLUMNS + IMAGES_EXTRA_COLUMNS
    assert tuple(ds["votes"].column_names) == VOTES_COLUMNS
    assert not set(EMBEDDED_IMAGE_COLUMNS) & set(ds["train"].column_names)  # pairs by uid
    assert ds["images"].features["image"].__class__.__name__ == "Image"
    with pytest.raises(KeyError, match="train, test, images, votes"):
        ds["validation"]


def _card_snippet(folder: Path, cache: str) -> dict:
    """Run the dataset card's loading code against the folder; return its variables."""
    card = (folder / "README.md").read_text()
    code = card.split("## Load", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    code = code.replace('"path/to/this/folder"', f"{str(folder)!r}")
    code = code.replace("from datasets import load_dataset", "")  # ours keeps tmp's cache
    scope: dict = {"load_dataset": partial(load_dataset, cache_dir=cache)}
    exec(compile(code, "card", "exec"), scope)
    return scope


def test_parquet_folder_loads_unchanged(project, tmp_path):
    ds = build_preference_dataset(project, 0.2, seed=0)
    folder = save_parquet(ds, tmp_path / "export")
    cache = str(tmp_path / "cache")
    loaded = load_dataset(str(folder), cache_dir=cache)
    assert set(loaded) == {"train", "test"}
    for split in ("train", "test"):
        ours, theirs = ds[split], loaded[split]
        assert theirs.num_rows == ours.num_rows > 0
        assert theirs.to_list() == ours.to_list()
    # the card's own snippet gives a pair's images, joined by uid from the images config
    scope = _card_snippet(folder, cache)
    pair, left, right = scope["pair"], scope["left"], scope["right"]
    assert pair == loaded["train"][0]
    for uid, image in ((pair["image_0_uid"], left), (pair["image_1_uid"], right)):
        assert isinstance(image, Image.Image) and image.size == (24, 16)
        original = Image.open(project.image(uid).path)
        assert list(image.convert("RGB").getdata()) == list(original.getdata())
    # labels: 1/0 decided, 0.5/0.5 ties, best image the winner
    for row in loaded["train"].select_columns(
        ["label_0", "label_1", "best_image_uid", "image_0_uid", "image_1_uid"]
    ):
        assert (row["label_0"], row["label_1"]) in {(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)}
        best = {1.0: row["image_0_uid"], 0.0: row["image_1_uid"], 0.5: None}[row["label_0"]]
        assert row["best_image_uid"] == best
    # the plain parquet loader reads the same files
    plain = load_dataset(
        "parquet", data_files=str(folder / "data/train-*.parquet"), cache_dir=cache, split="train"
    )
    assert plain.num_rows == ds["train"].num_rows
    images = load_dataset(str(folder), "images", split="train", cache_dir=cache)
    assert images.num_rows == 20 and isinstance(images[0]["image"], Image.Image)
    assert sorted(images["uid"]) == sorted(img.uid for img in project.images)
    votes = load_dataset(str(folder), "votes", split="train", cache_dir=cache)
    assert votes.num_rows == 90
    meta = json.loads((folder / "preference_studio.json").read_text())
    # 20% of 20 images kept too few test pairs: the share was raised to 30%, and recorded
    assert meta["project"] == "demo" and meta["split"]["test_images"] == 6
    assert meta["split"]["requested_fraction"] == 0.2 and meta["split"]["test_fraction"] == 0.3
    assert meta["version"] == 2


def test_images_are_stored_once(project, tmp_path):
    """The published size is the image bytes plus small rows: no pair holds an image."""
    folder = save_parquet(build_preference_dataset(project, 0.2, seed=0), tmp_path / "e")
    image_bytes = sum(Path(img.path).stat().st_size for img in project.images)
    images = sum(p.stat().st_size for p in (folder / "images").glob("*.parquet"))
    pairs = sum(p.stat().st_size for p in (folder / "data").glob("*.parquet"))
    votes = sum(p.stat().st_size for p in (folder / "votes").glob("*.parquet"))
    assert image_bytes < images < 1.2 * image_bytes + 20_000
    assert pairs + votes < 90 * 200 + 20_000  # per-vote rows, a few KB of Parquet footer
    assert not list(folder.rglob(".*.part"))


def test_embedded_export_has_both_images_in_every_row(project, tmp_path):
    ds = build_preference_dataset(project, 0.2, seed=0)
    folder = export_embedded(ds, tmp_path / "pickapic")
    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"}
    for split in ("train", "test"):
        theirs = loaded[split]
        assert tuple(theirs.column_names[:2]) == EMBEDDED_IMAGE_COLUMNS
        assert theirs.select_columns(list(ds[split].column_names)).to_list() == ds[split].to_list()
        row = theirs[0]
        for side in (0, 1):
            original = Image.open(project.image(row[f"image_{side}_uid"]).path)
            assert list(row[f"image_{side}"].convert("RGB").getdata()) == list(original.getdata())


def test_split_is_disjoint_by_image_after_loading(project, tmp_path):
    folder = save_parquet(build_preference_dataset(project, 0.3, seed=2), tmp_path / "e")
    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))

    def uids(split):
        return set(loaded[split]["image_0_uid"]) | set(loaded[split]["image_1_uid"])

    assert uids("train") and uids("test") and not uids("train") & uids("test")


def test_joyquality_json_winner_first_and_files_open(project, tmp_path):
    ds = build_preference_dataset(project, 0.2, seed=0)
    path = export_joyquality(ds, tmp_path / "jq")
    doc = json.loads(path.read_text())
    decided = {
        s: [r for r in ds.tables.pairs[s] if r["label_0"] != r["label_1"]]
        for s in ("train", "test")
    }
    for split in ("train", "test"):
        assert len(doc[split]) == len(decided[split])  # ties left out
        for (winner, loser, label), row in zip(doc[split], decided[split], strict=True):
            assert label == 1
            assert Path(winner).is_absolute() and Path(winner).is_file()
            Image.open(winner).load()
            Image.open(loser).load()
            expected = row["best_image_uid"]
            assert Path(winner).stem == expected and Path(loser).stem != expected
    rel = json.loads(export_joyquality(ds, tmp_path / "jq2", relative_paths=True).read_text())
    assert all((tmp_path / "jq2" / a).is_file() for a, _, _ in rel["train"])


def test_trl_chosen_is_the_winner(project, tmp_path):
    ds = build_preference_dataset(project, 0.0)
    folder = export_trl(ds, tmp_path / "trl")
    trl = load_dataset(
        "parquet",
        data_files=str(folder / "train-*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    decided = [r for r in ds.tables.pairs["train"] if r["label_0"] != r["label_1"]]
    assert tuple(trl.column_names[:2]) == TRL_COLUMNS and trl.num_rows == len(decided)
    first = decided[0]
    winner = project.image(first["best_image_uid"])
    assert list(trl[0]["chosen"].getdata()) == list(Image.open(winner.path).getdata())
    assert trl[0]["prompt"] == "Which is sharper?"


def test_missing_image_file_is_named(project):
    path = Path(project.images[0].path)
    path.unlink()
    with pytest.raises(Exception, match=f"cannot be read.*{path.name}"):
        build_preference_dataset(project)
