"""The datasets/Hub adapter: build, Parquet round trip, JoyQuality and TRL files, push errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from datasets import load_dataset
from huggingface_hub.errors import RepositoryNotFoundError
from PIL import Image

from ranker.contracts import (
    IMAGES_COLUMNS,
    IMAGES_EXTRA_COLUMNS,
    PAIRS_COLUMNS,
    PAIRS_EXTRA_COLUMNS,
    TRL_COLUMNS,
    VOTES_COLUMNS,
)
from ranker.hub import (
    HubError,
    build_preference_dataset,
    export_joyquality,
    export_trl,
    hub_error,
    push_dataset,
    repo_lock,
    save_parquet,
)
from tests.ranker.dataset_fixtures import offline_hub, vote_tuples, voted_project  # noqa: F401


@pytest.fixture
def project(tmp_path):
    return voted_project(tmp_path, n_images=20, n_votes=90)[1]


def test_columns_follow_the_contract(project):
    ds = build_preference_dataset(project, 0.2, seed=0)
    assert tuple(ds["train"].column_names) == PAIRS_COLUMNS + PAIRS_EXTRA_COLUMNS
    assert tuple(ds["images"].column_names) == IMAGES_COLUMNS + IMAGES_EXTRA_COLUMNS
    assert tuple(ds["votes"].column_names) == VOTES_COLUMNS
    assert ds["train"].features["image_0"].__class__.__name__ == "Image"
    with pytest.raises(KeyError, match="train, test, images, votes"):
        ds["validation"]


def test_parquet_folder_loads_unchanged(project, tmp_path):
    ds = build_preference_dataset(project, 0.2, seed=0)
    folder = save_parquet(ds, tmp_path / "export")
    cache = str(tmp_path / "cache")
    loaded = load_dataset(str(folder), cache_dir=cache)
    assert set(loaded) == {"train", "test"}
    for split in ("train", "test"):
        ours, theirs = ds[split], loaded[split]
        assert theirs.num_rows == ours.num_rows > 0
        plain = [c for c in ours.column_names if not c.startswith("image_") or "uid" in c]
        assert theirs.select_columns(plain).to_list() == ours.select_columns(plain).to_list()
        row = theirs[0]
        assert isinstance(row["image_0"], Image.Image) and row["image_0"].size == (24, 16)
        uid = row["image_0_uid"]
        original = Image.open(project.image(uid).path)
        assert list(row["image_0"].convert("RGB").getdata()) == list(original.getdata())
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
    votes = load_dataset(str(folder), "votes", split="train", cache_dir=cache)
    assert votes.num_rows == 90
    meta = json.loads((folder / "preference_studio.json").read_text())
    assert meta["project"] == "demo" and meta["split"]["test_images"] == 4


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
        data_files=str(folder / "train.parquet"),
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


# --- pushing -----------------------------------------------------------------------------------
def test_push_without_token_says_so_and_changes_nothing(project, offline_hub):  # noqa: F811
    before = vote_tuples(project, include_undone=True)
    with pytest.raises(HubError, match="no Hugging Face token") as info:
        push_dataset(project, "me/prefs")
    assert info.value.kind == "token"
    assert vote_tuples(project, include_undone=True) == before


def test_push_offline_says_network_and_changes_nothing(project, offline_hub, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    before = vote_tuples(project, include_undone=True)
    with pytest.raises(HubError, match="no network access") as info:
        push_dataset(project, "me/prefs", private=True, commit_message="test")
    assert info.value.kind == "network"
    assert vote_tuples(project, include_undone=True) == before


@pytest.mark.parametrize("repo_id", ["", "no-slash", "bad//name", "a/b/c"])
def test_push_refuses_a_bad_repo_id(project, repo_id):
    with pytest.raises(HubError, match="not a Hub repo id") as info:
        push_dataset(project, repo_id, token="hf_test")
    assert info.value.kind == "invalid"


class FakeApi:
    """Records the upload instead of sending it."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        files = sorted(
            str(p.relative_to(kwargs["folder_path"]))
            for p in Path(kwargs["folder_path"]).rglob("*")
            if p.is_file()
        )
        self.calls.append(("upload_folder", kwargs["repo_id"], files, kwargs["commit_message"]))


def test_push_uploads_the_dataset_folder_once(project):
    api = FakeApi()
    result = push_dataset(project, "me/prefs", token="hf_test", commit_message="v1", api=api)
    assert result.url.endswith("datasets/me/prefs")
    (_, _, create), (_, repo, files, message) = api.calls
    assert create == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert repo == "me/prefs" and message == "v1"
    assert "README.md" in files and "data/train-00000-of-00001.parquet" in files
    assert "images/train-00000-of-00001.parquet" in files


def test_one_push_per_repo_at_a_time(project):
    with repo_lock("me/prefs"), pytest.raises(HubError, match="already running"):
        push_dataset(project, "me/prefs", token="hf_test", api=FakeApi())
    push_dataset(project, "me/other", token="hf_test", api=FakeApi())  # other repos are free


def test_hub_errors_say_which():
    request = httpx2.Request("GET", "https://huggingface.co/api/datasets/me/nope")
    missing = RepositoryNotFoundError("404", response=httpx2.Response(404, request=request))
    assert hub_error(missing, "me/nope", "download").kind == "not_found"
    assert "no such dataset repo" in str(hub_error(missing, "me/nope", "download"))
    refused = RepositoryNotFoundError.__mro__[1](
        "403", response=httpx2.Response(403, request=request)
    )
    assert hub_error(refused, "me/x", "push to").kind == "refused"
    dns = httpx2.ConnectError("Name or service not known")
    assert "cannot be reached" in str(hub_error(dns, "me/x", "push to"))
