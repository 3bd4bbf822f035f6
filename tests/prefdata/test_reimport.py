"""Importing the same dataset again adds nothing, in every format; a longer file adds the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefdata.imported import ImportedVote
from prefdata.joyquality_json import export_joyquality
from prefdata.ours import build_preference_dataset, save_parquet
from prefdata.project_import import import_dataset, votes_to_append
from prefdata.trl import export_trl
from ranker.intake import content_uid
from ranker.schema import VoteRow
from ranker.service import Studio
from tests.prefdata.fixtures import voted_project
from tests.ranker.helpers import make_images

FORMATS = ("ours", "pickapic", "pickapic-untimed", "trl", "joyquality")


def _export(project, fmt: str, folder):
    """``project``'s votes as a dataset file in ``fmt`` (all in train, ties kept where the
    format has them)."""
    ds = build_preference_dataset(project, 0.0)
    if fmt == "ours":
        return save_parquet(ds, folder)
    if fmt == "trl":
        return export_trl(ds, folder)
    if fmt == "joyquality":
        return export_joyquality(ds, folder, relative_paths=True)
    # Pick-a-Pic style: image bytes, labels, user_id, and created_at unless "untimed".
    votes = project.votes()
    paths = {img.uid: img.path for img in project.images}
    columns = {
        "jpg_0": [open(paths[v.left_uid], "rb").read() for v in votes],  # noqa: SIM115
        "jpg_1": [open(paths[v.right_uid], "rb").read() for v in votes],  # noqa: SIM115
        "label_0": [{"left": 1.0, "right": 0.0, "tie": 0.5}[v.outcome] for v in votes],
        "label_1": [{"left": 0.0, "right": 1.0, "tie": 0.5}[v.outcome] for v in votes],
        "user_id": [{"ann": 1, "bob": 2, "cy": 3}.get(v.labeler, 4) for v in votes],
    }
    if fmt == "pickapic":
        columns["created_at"] = [v.created_at for v in votes]
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), folder / "train-0.parquet")
    return folder / "train-0.parquet"


@pytest.mark.parametrize("fmt", FORMATS)
def test_importing_the_same_file_again_adds_nothing(tmp_path, fmt):
    _, project = voted_project(tmp_path, n_images=10, n_votes=40)
    path = _export(project, fmt, tmp_path / "export")
    studio = Studio(tmp_path / "copy.db")
    first = import_dataset(studio, path, images_dir=tmp_path / "imp", project="copy")
    before = studio.project("copy").votes()
    again = import_dataset(studio, path, images_dir=tmp_path / "imp", project="copy")
    assert first.votes_added > 20 and not first.bad_rows  # TRL and JoyQuality drop ties
    assert (again.votes_added, again.votes_present, again.images_added) == (0, first.votes_added, 0)
    assert studio.project("copy").votes() == before
    assert f"0 votes added, {first.votes_added} already there" in again.summary()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_with_three_more_votes_appends_exactly_those(tmp_path, fmt):
    _, project = voted_project(tmp_path, n_images=10, n_votes=40)
    studio = Studio(tmp_path / "copy.db")
    first = import_dataset(
        studio, _export(project, fmt, tmp_path / "v1"), images_dir=tmp_path / "imp", project="c"
    )
    # One repeats a decided vote with the pair shown the other way round, so only a
    # count (not the pair or winner alone) tells it is new in untimed formats.
    old = next(v for v in project.votes() if v.outcome != "tie")
    flipped = "right" if old.outcome == "left" else "left"
    uids = [img.uid for img in project.images]
    new = [
        (None, old.right_uid, old.left_uid, flipped, "ann", 1.8e9, None, "app"),
        (None, uids[0], uids[1], "left", "bob", 1.8e9 + 1, None, "app"),
        (None, uids[2], uids[3], "right", "cy", 1.8e9 + 2, None, "app"),
    ]
    project.record_votes(new)
    report = import_dataset(
        studio, _export(project, fmt, tmp_path / "v2"), images_dir=tmp_path / "imp", project="c"
    )
    assert (report.votes_added, report.votes_present) == (3, first.votes_added)
    got = studio.project("c").votes()
    assert len(got) == first.votes_added + 3
    assert [v.winner_loser for v in got[-3:]] == [v.winner_loser for v in project.votes()[-3:]]


def _joyquality_file(path, rows) -> None:
    path.write_text(json.dumps({"train": [[a, b, 1] for a, b in rows]}))


def _trl_file(path, rows) -> None:
    data = [(open(a, "rb").read(), open(b, "rb").read()) for a, b in rows]  # noqa: SIM115
    pq.write_table(
        pa.table({"chosen": [c for c, _ in data], "rejected": [r for _, r in data]}), path
    )


@pytest.mark.parametrize(
    ("suffix", "write"), [(".json", _joyquality_file), (".parquet", _trl_file)]
)
def test_identical_votes_repeated_in_one_file_all_import(tmp_path, suffix, write):
    a, b, c = (str(p) for p in make_images(tmp_path / "imgs", 3))
    studio = Studio(tmp_path / "r.db")
    studio.create_project("r", "Which is sharper?")  # existing and empty: the append path
    write(tmp_path / f"one{suffix}", [(a, b), (a, b), (b, c)])
    first = import_dataset(
        studio, tmp_path / f"one{suffix}", images_dir=tmp_path / "imp", project="r"
    )
    again = import_dataset(
        studio, tmp_path / f"one{suffix}", images_dir=tmp_path / "imp", project="r"
    )
    write(tmp_path / f"two{suffix}", [(b, c), (a, b), (a, b), (a, b)])
    third = import_dataset(
        studio, tmp_path / f"two{suffix}", images_dir=tmp_path / "imp", project="r"
    )
    assert [(r.votes_added, r.votes_present) for r in (first, again, third)] == [
        (3, 0),
        (0, 3),
        (1, 3),
    ]
    a, b, c = (content_uid(Path(p).read_bytes()) for p in (a, b, c))
    got = [v.winner_loser for v in studio.project("r").votes()]
    assert got == [(a, b), (a, b), (b, c), (a, b)]


def _row(left, right, outcome, labeler="ann", created_at=5.0) -> VoteRow:
    return VoteRow(0, None, left, right, outcome, labeler, created_at, None, False, "app")


@pytest.mark.parametrize(
    ("existing", "incoming", "expected"),
    [
        # Unordered pair, same winner: present; the other winner: new.
        ([_row("a", "b", "left")], [ImportedVote("b", "a", "right", None, None)], []),
        ([_row("a", "b", "left")], [ImportedVote("b", "a", "left", None, None)], [0]),
        ([_row("a", "b", "tie")], [ImportedVote("b", "a", "tie", None, None)], []),
        # k present, m in the file: the last m - k are new.
        (
            [_row("a", "b", "left"), _row("a", "b", "left", "cy")],
            [ImportedVote("a", "b", "left", None, None)] * 3,
            [2],
        ),
        # A named labeler must match; a vote it matched is not counted again for no labeler.
        (
            [_row("a", "b", "left")],
            [
                ImportedVote("a", "b", "left", None, None),
                ImportedVote("a", "b", "left", "bob", None),
                ImportedVote("a", "b", "left", "ann", None),
            ],
            [0, 1],
        ),
        # A timed match uses up its existing vote; timed votes keep matching on time.
        (
            [_row("a", "b", "left")],
            [
                ImportedVote("a", "b", "left", None, 5.0),
                ImportedVote("a", "b", "left", None, None),
                ImportedVote("a", "b", "left", None, 6.0),
            ],
            [1, 2],
        ),
    ],
)
def test_votes_to_append_counts_untimed_votes(existing, incoming, expected):
    assert votes_to_append(existing, incoming) == expected
