"""The layout is the architecture: no package imports a layer above it.

common < ranker < prefdata < model < training < ui < app. The engine and the
preference-data package stay free of gradio and torch at import time (checked in a
fresh interpreter, since this test process has imported everything).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "common": {"ranker", "prefdata", "model", "training", "ui", "app", "gradio", "torch"},
    "ranker": {"prefdata", "model", "training", "ui", "app", "gradio", "torch"},
    "prefdata": {"model", "training", "ui", "app", "gradio", "torch"},
    "model": {"ranker", "prefdata", "training", "ui", "app", "gradio"},
    "training": {"ui", "app", "gradio"},
    "ui": {"app"},
}
# The ranker CLI is an entry point at the engine's edge: its import/export commands
# read and write exchange files through prefdata, and images added to a project with a
# model attached get their embeddings through model.project_loop, imported inside the
# command (the engine's modules themselves still never import either).
ALLOWED = {("ranker/cli.py", "prefdata"), ("ranker/cli.py", "model")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_upward(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        bad = {m for m in _imports(path) & FORBIDDEN[package] if (rel, m) not in ALLOWED}
        wrong += [f"{rel} imports {m}" for m in sorted(bad)]
    assert not wrong, "\n".join(wrong)


def test_engine_and_data_packages_import_neither_gradio_nor_torch():
    modules = [
        p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for package in ("common", "ranker", "prefdata")
        for p in sorted((ROOT / package).rglob("*.py"))
        if p.name != "__main__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "heavy = sorted(m for m in ('torch', 'gradio', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(modules) > 40
