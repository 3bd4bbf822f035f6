"""The README's code runs: its app examples verbatim against a fresh app, its commands.

Blocks that talk to the app are marked by an HTML comment on the line before them
(``<!-- This block talks to the app ... -->``; rendered Markdown hides it). Each one
runs verbatim in its own Python process, twice in a row, against a freshly launched
app with the demo project, only the address substituted. The demo's votes must be
unchanged afterwards: an example touches only its own project. The command-line
examples run as written (``python`` being this interpreter) in a scratch folder.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import launch_app
from tests.ui.helpers import make_context, make_images

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
APP_MARK = "<!-- This block talks to the app"
README_URL = "http://127.0.0.1:7860/"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def readme_blocks() -> list[tuple[str, str, bool]]:
    """(language, code, marked as talking to the app) of every fenced block."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in BLOCK.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        out.append((m.group(1), m.group(2), before.startswith(APP_MARK)))
    return out


def app_blocks() -> list[str]:
    return [code for lang, code, marked in readme_blocks() if marked and lang == "python"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "GRADIO_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, **extra}


def test_every_block_that_talks_to_the_app_is_marked():
    blocks = readme_blocks()
    assert app_blocks(), "no README block is marked as talking to the app"
    for lang, code, marked in blocks:
        if "gradio_client" in code or README_URL in code:
            assert marked and lang == "python", code[:200]
        if marked:
            assert README_URL in code, "a marked block must use the address the test replaces"


@pytest.fixture(params=[None, "readme-token"], ids=["local", "with-token"])
def fresh_app(tmp_path, request):
    """The full app with the demo project, as ``python app.py`` starts it: locally with no
    token, and with ``STUDIO_ADMIN_TOKEN`` set (the example then reads it from the
    environment)."""
    import app
    from ui.demo import ensure_demo_project

    ctx = make_context(tmp_path, admin_token=request.param)
    ensure_demo_project(ctx)
    demo, url = launch_app(ctx, tabs=tuple(t[0] for t in app.TABS))
    yield ctx, url
    demo.close()


def _demo_log(ctx) -> list:
    from ui.demo import DEMO_PROJECT

    row = ctx.studio.store.get_project(DEMO_PROJECT)
    votes = ctx.studio.store.votes(row.id, include_undone=True)
    return [(v.id, v.labeler, v.outcome, v.undone) for v in votes]


@pytest.mark.parametrize("index", range(len(app_blocks())))
def test_readme_app_block_runs_twice_and_touches_only_its_own_project(fresh_app, tmp_path, index):
    ctx, url = fresh_app
    code = app_blocks()[index].replace(README_URL, url + "/")
    demo_before = _demo_log(ctx)
    projects_before = {p.name for p in ctx.studio.list_projects()}
    work = tmp_path / "client"
    work.mkdir()
    outputs = []
    for run in (1, 2):
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=work,
            env=_env(**({"STUDIO_ADMIN_TOKEN": ctx.admin_token} if ctx.admin_token else {})),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"run {run} failed:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert _demo_log(ctx) == demo_before  # not one vote added to (or undone in) the demo
    created = {p.name for p in ctx.studio.list_projects()} - projects_before
    assert len(created) <= 1, created  # one project of its own, reused across runs
    for name in created:  # the same state after the second run as after the first
        assert ctx.studio.project(name).progress().votes == 9  # 10 votes, one undone
    served = [str(ctx.data_dir), str(tmp_path), str(Path.home())]
    for out in outputs:  # no server path in anything the example prints (CSV included)
        assert not [p for p in served if p in out], out
    assert not list(work.iterdir())  # nothing left behind in the caller's folder


# --- command lines ------------------------------------------------------------------------
def _command_lines(program: str) -> list[str]:
    """README lines of ``bash`` blocks that start with ``program``."""
    lines = []
    for lang, code, _ in readme_blocks():
        if lang == "bash":
            lines += [ln.strip() for ln in code.splitlines() if ln.strip().startswith(program)]
    return lines


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )


SKIP_MODULES = {"venv", "pip", "pytest"}


def readme_programs() -> dict[str, list[str]]:
    """Every program the README's ``bash`` blocks run -> the argv that starts it here.

    ``python -m X`` and ``accelerate launch ... -m X`` run module X, ``python x.py`` a
    script, and the ``pstudio-*`` names are the entry points of ``pyproject.toml``.
    """
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    found: dict[str, list[str]] = {}
    for lang, code, _ in readme_blocks():
        if lang != "bash":
            continue
        for segment in re.split(r"&&|\n", code):
            args = shlex.split(segment, comments=True)
            if args[:1] == ["nice"]:
                args = args[3:] if args[1:2] == ["-n"] else args[1:]
            if not args:
                continue
            if args[0] in ("python", "accelerate") and "-m" in args:
                module = args[args.index("-m") + 1]
                if module not in SKIP_MODULES:
                    found[module] = [sys.executable, "-m", module]
            elif args[0] == "python" and args[1].endswith(".py"):
                found[args[1]] = [sys.executable, str(ROOT / args[1])]
            elif args[0] in scripts:
                module, fn = scripts[args[0]].split(":")
                call = f"import sys; from {module} import {fn}; sys.exit({fn}())"
                found[args[0]] = [sys.executable, "-c", call]
    return found


def test_the_readme_names_its_programs():
    assert {"ranker", "model.score", "training", "pstudio-train", "app.py"} <= set(
        readme_programs()
    )


@pytest.mark.parametrize("program", sorted(readme_programs()))
def test_readme_programs_answer_help(program, tmp_path):
    done = _run([*readme_programs()[program], "--help"], tmp_path)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


def test_readme_ranker_commands_run_as_written(tmp_path):
    """The ``python -m ranker`` block, verbatim, on generated images and a comparisons.csv."""
    lines = _command_lines("python -m ranker")
    assert len(lines) >= 5 and any(" create " in ln for ln in lines)
    faces = make_images(tmp_path / "faces" / "set1", 6)
    rows = [f"{faces[i]},{faces[i + 1]}" for i in range(5)]  # a known chain, best first
    (tmp_path / "comparisons.csv").write_text("Winner,Loser\n" + "\n".join(rows) + "\n")
    outputs = []
    for line in lines:
        args = shlex.split(line)
        done = _run([sys.executable, *args[1:]], tmp_path)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        outputs.append(done.stdout)
    assert "6 images added" in "".join(outputs) and "imported 5 votes" in "".join(outputs)
    board = next(o for ln, o in zip(lines, outputs, strict=True) if " leaderboard " in ln)
    assert board.splitlines()[1].endswith("img000.png")  # the chain's winner first
    assert (tmp_path / "faces.json").is_file()
    assert (tmp_path / "image_rankings.csv").read_text().startswith("Image,ELO")


def test_readme_pairs_command_runs(tmp_path):
    """``pstudio-rank pairs PROJECT --labeler NAME`` (the installed name of ``python -m ranker``)."""
    folder = make_images(tmp_path / "imgs", 5)[0].parent
    db = str(tmp_path / "s.db")
    ranker = [sys.executable, "-m", "ranker", "--db", db]
    assert _run([*ranker, "create", "p", str(folder)], tmp_path).returncode == 0
    assert "pstudio-rank pairs PROJECT --labeler NAME" in README.read_text(encoding="utf-8")
    done = _run([*ranker, "pairs", "p", "--labeler", "ann"], tmp_path)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 3, done.stderr
