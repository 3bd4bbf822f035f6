"""``import app`` is cheap: no torch, no gradio, no model, no network."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_app_is_cheap():
    code = (
        "import sys, time; t = time.perf_counter(); import app; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'gradio', 'transformers', 'datasets') if m in sys.modules]; "
        "print(heavy, dt)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "[]", f"import app pulled in {out}"
    assert float(out[-1]) < 1.0
