import json

from ranker.cli import main

from .helpers import make_images


def test_cli_create_import_export_leaderboard(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    folder = make_images(tmp_path / "imgs", 5)[0].parent
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    assert main(["--db", db, "create", "cli", str(folder), "--strategy", "random"]) == 0
    out = capsys.readouterr().out
    assert "5 images added" in out and "broken.png" in out
    csv_path = tmp_path / "comparisons.csv"
    csv_path.write_text(f"Winner,Loser\n{folder}/img000.png,{folder}/img001.png\n")
    assert main(["--db", db, "import-ir", "cli", str(csv_path)]) == 0
    assert "imported 1 votes" in capsys.readouterr().out
    out_json = tmp_path / "cli.json"
    assert main(["--db", db, "export", "cli", "--format", "json", "--out", str(out_json)]) == 0
    assert len(json.loads(out_json.read_text())["votes"]) == 1
    assert main(["--db", db, "leaderboard", "cli", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("1\t4.39") and lines[-2].endswith("img000.png")
    assert main(["--db", db, "export", "cli", "--format", "rankings"]) == 0
    assert capsys.readouterr().out.startswith("Image,ELO,Uncertainty,Upvotes,Downvotes")


def test_cli_errors_are_clear(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert main(["--db", db, "leaderboard", "missing"]) == 2
    assert "no project named 'missing'" in capsys.readouterr().err
    assert main(["--db", db, "create", "x", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_pairs_shows_the_look_ahead_and_keeps_it(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    folder = make_images(tmp_path / "imgs", 6)[0].parent
    assert main(["--db", db, "create", "cli", str(folder), "--strategy", "random"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "pairs", "cli", "--labeler", "ann"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 3 and all(line.count("\t") == 2 for line in first)
    assert main(["--db", db, "pairs", "cli", "--labeler", "ann"]) == 0
    assert capsys.readouterr().out.splitlines() == first  # the same open pairs, from SQLite
