"""A saved fine-tune loads right outside the app: the README's snippet and upstream
JoyQuality's own patched forward (its score-images.py) give the app's scores.

Each loader runs in a fresh Python process, as a user's script would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.joyquality import build_tiny_model, load_model
from model.scoring import score_images
from training.export import LOADING_SNIPPET

ROOT = Path(__file__).resolve().parents[2]
README_PATH = "your-name/your-finetune"

# Upstream's score-images.py: its forward and its ImageDataset preprocessing, verbatim in
# behaviour (torchvision's pil_to_tensor/normalize written with torch, which is what they do).
UPSTREAM = """
import json, sys, types
import numpy as np, PIL.Image, torch
from transformers import SiglipForImageClassification

def joyquality_forward(self, pixel_values):
    with torch.amp.autocast("cuda", dtype=torch.bfloat16):
        embedding = self.vision_model(pixel_values).pooler_output
        return self.classifier(embedding).squeeze(-1)

path, size, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
model = SiglipForImageClassification.from_pretrained(path, dtype=torch.float32)
model.eval()
model.forward = types.MethodType(joyquality_forward, model)

def pixels(file):
    image = PIL.Image.open(file).convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), PIL.Image.Resampling.BICUBIC)
    canvas = PIL.Image.new("RGB", (size, size), (128, 128, 128))
    canvas.paste(image, (0, 0))
    x = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1) / 255.0
    return (x - 0.5) / 0.5

with torch.inference_mode():
    scores = model(torch.stack([pixels(f) for f in files]))
print(json.dumps(scores.tolist()))
"""


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- loading-snippet -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no loading snippet after <!-- loading-snippet -->"
    return match.group(1)


def run_python(code: str, *args: str) -> list[float]:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("snippet")
    folder = build_tiny_model(seed=4).save_pretrained(root / "final")
    rng = np.random.default_rng(0)
    files = []
    for i, size in enumerate([(40, 24), (32, 32), (17, 50)]):  # squash, as-is, upscale
        path = root / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    return folder, files


def app_scores(folder: Path, files: list[str]) -> list[float]:
    # One batch, as the loaders below use: CPU kernels may round differently by batch shape.
    model = load_model(folder, device="cpu")
    rows = score_images(model, files, num_workers=0, batch_size=len(files))
    return [r["score"] for r in rows]


def test_readme_snippet_is_the_model_cards():
    assert readme_snippet() == LOADING_SNIPPET.format(path=README_PATH)


def test_readme_snippet_scores_equal_the_apps_exactly(saved):
    folder, files = saved
    code = readme_snippet().replace(README_PATH, str(folder))
    code += "\nimport json, sys\nprint(json.dumps(quality_scores(sys.argv[1:]).tolist()))\n"
    assert run_python(code, *files) == app_scores(folder, files)


def test_upstream_patched_forward_gives_the_same_scores(saved):
    folder, files = saved
    got = run_python(UPSTREAM, str(folder), "32", *files)
    assert got == app_scores(folder, files)


def test_saved_preprocessor_config_matches_our_preprocessing(saved):
    from transformers import AutoImageProcessor

    from model.preprocess import batch_pixel_values

    folder, files = saved
    processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    images = [Image.open(f).convert("RGB") for f in files]
    theirs = processor(images=images, return_tensors="pt")["pixel_values"]
    assert (theirs == batch_pixel_values(files, 32)).all()
