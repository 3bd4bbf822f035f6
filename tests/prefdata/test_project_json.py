import json
from pathlib import Path

import numpy as np
import pytest

from prefdata import imageranker_csv, project_json
from ranker.errors import ImportFormatError
from ranker.service import Studio
from tests.ranker.helpers import make_images


@pytest.fixture
def studio(tmp_path):
    s = Studio(tmp_path / "studio.db")
    yield s
    s.close()


def _project(studio, folder, name="p", n=6):
    project = studio.create_project(name, strategy="random")
    project.add_folder(make_images(folder, n)[0].parent)
    return project


def test_ir_import_keeps_order_and_duplicates(studio, tmp_path):
    project = _project(studio, tmp_path / "imgs")
    a, b, c = (img.path for img in project.images[:3])
    text = (
        "\ufeffWinner,Loser\n"
        + "\n".join([f"{a},{b}", f"{a},{b}", f"{b},{c}", f"None,{c}", f"{c},{a}"])
        + "\n"
    )
    counts = imageranker_csv.import_ir_comparisons(project, text)
    assert counts == {"votes": 4, "excluded": 1}
    votes = project.votes()
    assert [project.image(v.left_uid).path for v in votes] == [a, a, b, c]
    assert project.image(project.images[2].uid).excluded
    exported = imageranker_csv.export_ir_comparisons(project)
    # Exports name images relative to their common folder: no server paths leave.
    a, b, c = (Path(p).name for p in (a, b, c))
    assert exported.splitlines() == [
        "Winner,Loser",
        f"{a},{b}",
        f"{a},{b}",
        f"{b},{c}",
        f"None,{c}",
        f"{c},{a}",
    ]
    assert str(tmp_path) not in exported
    # Round trip: a second project importing our export gets the same ratings.
    again = _project(studio, tmp_path / "imgs", name="again")
    imageranker_csv.import_ir_comparisons(again, exported)
    assert np.array_equal(again.ratings.pool.mu, project.ratings.pool.mu)


def test_ir_import_matches_by_file_name_when_folder_moved(studio, tmp_path):
    project = _project(studio, tmp_path / "here")
    text = "Winner,Loser\n/old/place/img001.png,/old/place/img002.png\n"
    imageranker_csv.import_ir_comparisons(project, text)
    v = project.votes()[0]
    assert (project.image(v.left_uid).name, project.image(v.right_uid).name) == (
        "img001.png",
        "img002.png",
    )


@pytest.mark.parametrize(
    "text,match",
    [
        ("Loser,Winner\na,b\n", "header must be 'Winner,Loser'"),
        ("", "found 'an empty file'"),
        ("Winner,Loser\na,b,c\n", "line 2: expected 2 columns"),
        ("Winner,Loser\n/x/nothing.png,/x/img001.png\n", "match no image"),
    ],
)
def test_ir_import_bad_input_saves_nothing(studio, tmp_path, text, match):
    project = _project(studio, tmp_path / "imgs")
    with pytest.raises(ImportFormatError, match=match):
        imageranker_csv.import_ir_comparisons(project, text)
    assert project.votes() == []


def test_ir_rankings_exact_columns(studio, tmp_path):
    project = _project(studio, tmp_path / "imgs")
    a, b = (img.path for img in project.images[:2])
    imageranker_csv.import_ir_comparisons(project, f"Winner,Loser\n{a},{b}\n")
    lines = imageranker_csv.export_ir_rankings(project).splitlines()
    assert lines[0] == "Image,ELO,Uncertainty,Upvotes,Downvotes"
    assert lines[1] == f"{Path(a).name},4.39,7.17,1,0"  # relative: no server paths
    assert lines[-1] == f"{Path(b).name},-4.39,7.17,0,1"


def test_json_export_import_identical(studio, tmp_path):
    project = _project(studio, tmp_path / "imgs")
    for k in range(12):
        pair = project.next_pair("alice")
        project.vote(pair.pair_id, ("left", "right", "tie")[k % 3], "alice")
    project.set_excluded(project.images[5].uid, True, "duplicate")
    text = project_json.export_json(project)
    doc = json.loads(text)
    assert doc["leaderboard"][0].keys() >= {"mu", "sigma", "conservative", "wins", "ties"}
    copy = project_json.import_json(studio, text, name="copy")
    assert [(v.left_uid, v.right_uid, v.outcome, v.labeler) for v in copy.votes()] == [
        (v.left_uid, v.right_uid, v.outcome, v.labeler) for v in project.votes()
    ]
    assert np.array_equal(copy.ratings.pool.mu, project.ratings.pool.mu)
    assert np.array_equal(copy.ratings.pool.sigma, project.ratings.pool.sigma)
    assert copy.image(project.images[5].uid).exclusion_reason == "duplicate"
    csv_text = project_json.export_csv(project)
    assert csv_text.splitlines()[0].startswith("rank,uid,path,mu,sigma,conservative,wins")


def test_json_import_bad_input(studio):
    with pytest.raises(ImportFormatError, match="not valid JSON"):
        project_json.import_json(studio, "{nope")
    with pytest.raises(ImportFormatError, match="format marker"):
        project_json.import_json(studio, json.dumps({"votes": []}))
