"""Live backup: the append-only JSONL log, restore into a fresh store, the scheduler's reports.

A local folder stands in for the backup repo's working copy; the scheduler's own
upload is the library's, replaced here by a fake ``HfApi``.
"""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from prefdata import backup_hub as backup_mod
from prefdata.backup import BackupLog, restore_from_folders
from prefdata.backup_hub import Backup, backup_status, restore_if_empty, start_backup
from ranker.service import Studio
from tests.prefdata.fixtures import ratings, vote_tuples, voted_project


def _busy_project(tmp_path):
    studio, project = voted_project(tmp_path, n_images=12, n_votes=40)
    uids = [img.uid for img in project.images]
    project.set_excluded(uids[3], True, "blurry")
    project.record_votes([(None, uids[0], uids[1], "left", "ann", 1.9e9, None, "app")] * 2)
    project.undo("ann")
    project.store.set_priors(project.row.id, {uids[4]: (2.0, 5.0)})
    project.update(instruction="Which is sharper now?")
    return studio, project


def test_sync_then_restore_gives_the_same_project(tmp_path):
    studio, project = _busy_project(tmp_path)
    log = BackupLog(studio.store, tmp_path / "bk")
    assert log.sync() > 40 and log.sync() == 0  # nothing new the second time
    files = list((tmp_path / "bk" / "log").glob("*.jsonl"))
    assert len(files) == 1 and len(list((tmp_path / "bk" / "images").iterdir())) == 12

    fresh = Studio(tmp_path / "fresh.db")
    report = restore_from_folders(fresh, [tmp_path / "bk"])
    assert report.projects == ["demo"] and report.votes == 41
    copy = fresh.project("demo")
    assert vote_tuples(copy, include_undone=True) == vote_tuples(project, include_undone=True)
    assert ratings(copy) == ratings(project)
    assert copy.row.instruction == "Which is sharper now?"
    excluded = [(i.uid, i.excluded_after_vote) for i in copy.images if i.excluded]
    assert excluded == [(i.uid, 40) for i in project.images if i.excluded]


def test_later_changes_are_appended_not_rewritten(tmp_path):
    studio, project = voted_project(tmp_path, n_images=8, n_votes=10)
    log = BackupLog(studio.store, tmp_path / "bk")
    log.sync()
    first = log.path.read_text()
    uids = [img.uid for img in project.images]
    project.record_votes([(None, uids[0], uids[2], "tie", "bob", 1.9e9, 5.0, "app")])
    project.undo("bob")
    project.set_excluded(uids[1], True, "dup")
    project.set_excluded(uids[1], False)
    assert log.sync() == 2  # the vote and its undo; the exclusion was taken back in between
    project.set_excluded(uids[1], True, "dup")
    assert log.sync() == 1
    text = log.path.read_text()
    assert text.startswith(first)
    ops = [json.loads(line)["op"] for line in text[len(first) :].splitlines()]
    assert ops.count("vote") == 1 and ops.count("undo") == 1


def test_a_restored_process_does_not_write_the_backup_again(tmp_path):
    studio, project = _busy_project(tmp_path)
    BackupLog(studio.store, tmp_path / "bk").sync()
    fresh = Studio(tmp_path / "fresh.db")
    restore_from_folders(fresh, [tmp_path / "bk"])
    second = BackupLog(fresh.store, tmp_path / "bk2", known=[tmp_path / "bk"])
    assert second.sync() == 0
    uids = [img.uid for img in fresh.project("demo").images]
    fresh.project("demo").record_votes([(None, uids[5], uids[6], "right", "cy", 2e9, None, "app")])
    assert second.sync() == 1
    assert not (tmp_path / "bk2" / "images").exists()  # image bytes are not copied twice
    # both processes' files together restore everything, in order
    third = Studio(tmp_path / "third.db")
    restore_from_folders(third, [tmp_path / "bk", tmp_path / "bk2"])
    assert vote_tuples(third.project("demo"), True) == vote_tuples(fresh.project("demo"), True)


def test_deleted_projects_stay_deleted_and_existing_ones_are_kept(tmp_path):
    studio, _ = voted_project(tmp_path, n_images=6, n_votes=5)
    log = BackupLog(studio.store, tmp_path / "bk")
    log.sync()
    other = studio.create_project("other")
    other.add_files([img.path for img in studio.project("demo").images[:2]])
    log.sync()
    studio.delete_project("demo")
    log.sync()
    fresh = Studio(tmp_path / "fresh.db")
    fresh.create_project("other")
    report = restore_from_folders(fresh, [tmp_path / "bk"])
    assert report.projects == [] and report.skipped == ["other"]
    assert [p.name for p in fresh.list_projects()] == ["other"]


def test_a_damaged_last_line_is_skipped(tmp_path):
    studio, project = voted_project(tmp_path, n_images=6, n_votes=5)
    log = BackupLog(studio.store, tmp_path / "bk")
    log.sync()
    with log.path.open("a") as fh:
        fh.write('{"op": "vote", "proj')  # a crash mid-write
    fresh = Studio(tmp_path / "fresh.db")
    restore_from_folders(fresh, [tmp_path / "bk"])
    assert vote_tuples(fresh.project("demo")) == vote_tuples(project)


class FakeHubApi:
    """What CommitScheduler calls on HfApi; pushes fail while ``fail`` is set."""

    def __init__(self, fail: bool = False, fail_create: bool = False) -> None:
        self.fail, self.fail_create = fail, fail_create
        self.commits: list[list[str]] = []
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.lock = threading.Lock()

    def create_repo(self, repo_id, **kwargs):
        if self.fail_create:
            raise ConnectionError("Name or service not known")
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        if self.fail:
            raise ConnectionError("Name or service not known")
        self.commits.append(sorted(op.path_in_repo for op in operations))
        return SimpleNamespace(commit_url="https://example/commit")

    def run_as_future(self, fn, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)


@pytest.fixture
def backup_factory(tmp_path):
    made = []

    def make(studio, api, **kwargs):
        b = Backup(
            studio.store,
            tmp_path / "data" / "backup",
            "me/backup",
            "hf_test",
            every=60,
            api=api,
            **kwargs,
        )
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def test_a_failed_push_is_shown_retried_and_changes_nothing(tmp_path, backup_factory):
    studio, project = voted_project(tmp_path, n_images=6, n_votes=8)
    before = vote_tuples(project, include_undone=True)
    api = FakeHubApi(fail=True)
    backup = backup_factory(studio, api)
    with pytest.raises(ConnectionError):
        backup.push_now().result(timeout=10)
    assert "Backup failing" in backup.status() and "cannot be reached" in backup.status()
    assert vote_tuples(project, include_undone=True) == before
    api.fail = False
    backup.push_now().result(timeout=10)
    assert backup.last_error is None and "last push: not yet" not in backup.status()
    pushed = api.commits[-1]
    assert any(p.startswith("log/") and p.endswith(".jsonl") for p in pushed)
    assert sum(p.startswith("images/") for p in pushed) == 6
    backup.push_now().result(timeout=10)  # nothing new: no commit
    assert len(api.commits) == 1


def test_scheduler_start_failure_is_reported_and_retried_on_demand(tmp_path, backup_factory):
    studio, _ = voted_project(tmp_path, n_images=4, n_votes=3)
    api = FakeHubApi(fail_create=True)
    backup = backup_factory(studio, api)
    assert backup.scheduler is None and "cannot be reached" in backup.status()
    assert backup.push_now() is None
    api.fail_create = False
    backup.push_now().result(timeout=10)
    assert api.commits and backup.last_error is None


def test_uploaded_files_are_not_sent_again_by_the_next_process(tmp_path, backup_factory):
    studio, project = voted_project(tmp_path, n_images=4, n_votes=3)
    api = FakeHubApi()
    backup_factory(studio, api).push_now().result(timeout=10)
    uids = [img.uid for img in project.images]
    project.record_votes([(None, uids[0], uids[1], "left", "ann", 2e9, None, "app")])
    later = backup_factory(studio, FakeHubApi())
    later.push_now().result(timeout=10)
    (files,) = later.api.commits
    assert len(files) == 1 and files[0].startswith("log/")  # only the new process's log


def test_start_and_restore_from_the_environment(tmp_path, monkeypatch):
    studio, project = _busy_project(tmp_path)
    BackupLog(studio.store, tmp_path / "repo").sync()  # what the repo holds

    def fake_download(repo_id, dest, **kwargs):
        assert repo_id == "me/backup" and kwargs.get("everything")
        shutil.copytree(tmp_path / "repo", dest, dirs_exist_ok=True)
        return dest

    monkeypatch.setattr("prefdata.hub.download_dataset", fake_download)
    monkeypatch.setenv(backup_mod.REPO_ENV, "me/backup")
    ctx = SimpleNamespace(data_dir=tmp_path / "space", studio=Studio(tmp_path / "space.db"))
    report = restore_if_empty(ctx)
    assert report.projects == ["demo"]
    assert ratings(ctx.studio.project("demo")) == ratings(project)
    assert restore_if_empty(ctx) is None  # not empty any more
    api = FakeHubApi()
    backup = start_backup(ctx, api=api)
    try:
        assert start_backup(ctx) is backup
        backup.push_now().result(timeout=10)
        assert api.commits == []  # the restored content is already in the repo
        assert "restored 1 projects" in backup_status(ctx)
    finally:
        backup.stop()
        backup_mod._BACKUPS.clear()


def test_no_repo_configured_means_no_backup(tmp_path, monkeypatch):
    monkeypatch.delenv(backup_mod.REPO_ENV, raising=False)
    ctx = SimpleNamespace(data_dir=tmp_path, studio=Studio(tmp_path / "s.db"))
    assert start_backup(ctx) is None and restore_if_empty(ctx) is None
    assert "No live backup" in backup_status(ctx)


def test_no_token_is_reported(tmp_path):
    studio = Studio(tmp_path / "s.db")
    b = Backup(studio.store, tmp_path / "bk", "me/backup", None)
    assert b.scheduler is None and "no HF_TOKEN" in b.status()
