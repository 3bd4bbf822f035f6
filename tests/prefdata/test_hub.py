"""The Hub adapter: pushing (token, network, repo id, one push at a time), error messages."""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
import pytest
from huggingface_hub.errors import RepositoryNotFoundError

from prefdata.hub import HubError, hub_error, push_dataset, repo_lock
from tests.prefdata.fixtures import offline_hub, vote_tuples, voted_project  # noqa: F401


@pytest.fixture
def project(tmp_path):
    return voted_project(tmp_path, n_images=12, n_votes=40)[1]


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


@pytest.mark.network
@pytest.mark.skipif(
    not (os.environ.get("PSTUDIO_TEST_REPO") and os.environ.get("HF_TOKEN")),
    reason="needs the Hub: set PSTUDIO_TEST_REPO (a scratch dataset repo id) and HF_TOKEN",
)
def test_push_load_and_import_from_the_hub(project, tmp_path):
    from datasets import load_dataset

    from prefdata.project_import import import_dataset
    from ranker.service import Studio

    repo = os.environ["PSTUDIO_TEST_REPO"]
    result = push_dataset(project, repo, private=True, test_fraction=0.0)
    loaded = load_dataset(repo, cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == result.report.train_pairs
    fresh = Studio(tmp_path / "fresh.db")
    import_dataset(fresh, repo, images_dir=tmp_path / "imported")
    assert vote_tuples(fresh.project(project.name)) == vote_tuples(project)
