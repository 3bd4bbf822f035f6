"""bench/gpu_check.py runs end to end in tiny mode, in a fresh process that cannot import
the packages the GPU machine lacks (datasets, gradio, trueskill)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKED = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("datasets", "gradio", "trueskill", "nh3"):
            raise ImportError(f"{name} is not installed on the GPU machine")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_gpu_check_runs_in_tiny_mode_without_app_only_packages(tmp_path):
    out = tmp_path / "check.json"
    cmd = [sys.executable, "-c", BLOCKED, str(ROOT / "bench" / "gpu_check.py"), "--arch", "tiny",
           "--device", "cpu", "--out", str(out), "--workers", "0", "--score-images", "16"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    stages = report["stages"]
    assert not [k for k, v in stages.items() if "error" in v or "skipped" in v], stages
    assert stages["end_to_end"]["images"] == 16 and stages["end_to_end"]["failed"] == 0
    assert stages["finetune"]["saved"] and stages["finetune"]["pairs_per_s"] > 0
    assert stages["finetune"]["device_batch_pairs"] >= 4
    assert report["summary"]["end_to_end_images_per_s"] > 0
    assert "JoyQuality published 204" in proc.stdout
