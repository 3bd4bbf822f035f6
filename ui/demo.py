"""The demo project: generated pictures with graded damage, so the true order is known.

Three procedurally drawn scenes (no downloads, nothing in git), each saved clean and
with blur, noise, JPEG and low-resolution damage at a mild and a strong level:
27 images whose quality order is known (clean > mild > strong). A newcomer can
rank them and watch the leaderboard converge; the progress line shows Kendall's tau
between the current ranking and that order. File names do not give the answer away.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from common.maths import kendall_tau
from ui.context import StudioContext

DEMO_PROJECT = "Demo: image quality"
DEMO_INSTRUCTION = "Which image has better overall quality?"
SIZE = (512, 384)
SCENES = ("mountain lake", "city at dusk", "still life")
# (kind, level, parameter): level 0 is the clean image, 1 mild damage, 2 strong.
DAMAGE = (
    ("clean", 0, None),
    ("blur", 1, 1.6),
    ("blur", 2, 4.0),
    ("noise", 1, 14.0),
    ("noise", 2, 40.0),
    ("jpeg", 1, 22),
    ("jpeg", 2, 6),
    ("lowres", 1, 0.45),
    ("lowres", 2, 0.18),
)
TRUTH_FILE = "truth.json"
log = logging.getLogger(__name__)


def demo_dir(ctx: StudioContext) -> Path:
    return Path(ctx.data_dir) / "demo"


def ensure_demo_project(ctx: StudioContext) -> None:
    """Create the demo images and project if missing; never stops the app from starting."""
    try:
        folder = write_demo_images(demo_dir(ctx))
        studio = ctx.studio
        if any(p.name == DEMO_PROJECT for p in studio.list_projects()):
            return
        project = studio.create_project(DEMO_PROJECT, DEMO_INSTRUCTION)
        report = project.add_folder(folder / "images")
        log.info("demo project created: %s", report.summary())
    except Exception:  # the demo is a convenience: log it, keep the app up
        log.exception("could not create the demo project")


def write_demo_images(root: Path, seed: int = 7) -> Path:
    """Write the 27 demo images, their context and the known order under ``root``."""
    images = root / "images"
    if (root / TRUTH_FILE).exists() and len(list(images.glob("*.jpg"))) == len(SCENES) * len(
        DAMAGE
    ):
        return root
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(SCENES) * len(DAMAGE))  # shuffled numbering hides the answer
    truth, context = {}, {"default": "Demo image."}
    k = 0
    for s, scene in enumerate(SCENES):
        clean = draw_scene(s, rng)
        for kind, level, param in DAMAGE:
            name = f"demo-{order[k] + 1:02d}.jpg"
            damage(clean, kind, param, rng).save(images / name, "JPEG", quality=95)
            truth[name] = {"scene": scene, "damage": kind, "level": level}
            context[name] = f"<b>Scene:</b> {scene}. <i>Generated demo picture.</i>"
            k += 1
    (images / "context.json").write_text(json.dumps(context, indent=1))
    (root / TRUTH_FILE).write_text(json.dumps(truth, indent=1))
    return root


def known_levels(ctx: StudioContext) -> dict[str, int]:
    """File name -> damage level (0 best) of the demo images; empty if not generated."""
    path = demo_dir(ctx) / TRUTH_FILE
    if not path.exists():
        return {}
    return {name: v["level"] for name, v in json.loads(path.read_text()).items()}


def kendall_tau_vs_truth(ranked_names: list[str], levels: dict[str, int]) -> float | None:
    """Kendall's tau-b between a ranking (best first) and the known levels (ties allowed)."""
    x = [levels[n] for n in ranked_names if n in levels]
    if len(x) < 3:
        return None
    # Position 0 is the best and level 0 the least damaged: the same direction.
    tau = kendall_tau(np.arange(len(x)), x)
    return None if np.isnan(tau) else tau


# --- pictures --------------------------------------------------------------------------
def draw_scene(index: int, rng: np.random.Generator) -> Image.Image:
    return (_mountain_lake, _city, _still_life)[index](rng)


def damage(img: Image.Image, kind: str, param, rng: np.random.Generator) -> Image.Image:
    if kind == "clean":
        return img.copy()
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(param))
    if kind == "noise":
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, param, (SIZE[1], SIZE[0], 3))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=param)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "lowres":
        small = img.resize((int(SIZE[0] * param), int(SIZE[1] * param)), Image.Resampling.BILINEAR)
        return small.resize(SIZE, Image.Resampling.BILINEAR)
    raise ValueError(f"unknown damage {kind!r}")


def _gradient(top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0, 1, SIZE[1])[:, None, None]
    return (np.array(top) * (1 - t) + np.array(bottom) * t) * np.ones((1, SIZE[0], 1))


def _ridge(rng: np.random.Generator, base: float, rough: float) -> np.ndarray:
    x = np.zeros(SIZE[0])
    for octave in range(1, 7):
        freq, amp = 2**octave, rough / 1.8**octave
        x += amp * np.sin(np.linspace(0, freq * np.pi, SIZE[0]) + rng.uniform(0, 6.3))
    return base + x


def _mountain_lake(rng: np.random.Generator) -> Image.Image:
    arr = _gradient((70, 130, 210), (250, 200, 150))
    yy = np.arange(SIZE[1])[:, None]
    for base, rough, color in (
        (170, 60, (90, 90, 120)),
        (205, 45, (60, 80, 70)),
        (235, 25, (35, 60, 40)),
    ):
        mask = yy > _ridge(rng, base, rough)[None, :]
        arr[mask] = color
    arr[yy[:, 0] > 270] = arr[540 - yy[yy[:, 0] > 270, 0]] * 0.6 + np.array([20, 40, 70])  # lake
    texture = rng.normal(0, 10, arr.shape[:2])[..., None]
    arr += texture * (yy > 200)[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((380, 40, 440, 100), fill=(255, 240, 200))
    for x in range(10, 500, 23):  # pines on the shore: sharp edges show blur
        h = int(rng.integers(25, 50))
        d.polygon([(x, 270), (x + 8, 270 - h), (x + 16, 270)], fill=(20, 45, 25))
    return img


def _city(rng: np.random.Generator) -> Image.Image:
    img = Image.fromarray(_gradient((40, 30, 90), (240, 120, 80)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    x = 0
    while x < SIZE[0]:
        w, h = int(rng.integers(30, 70)), int(rng.integers(90, 300))
        shade = int(rng.integers(20, 60))
        d.rectangle((x, SIZE[1] - h, x + w, SIZE[1]), fill=(shade, shade, shade + 20))
        for wy in range(SIZE[1] - h + 8, SIZE[1] - 6, 12):  # window grid: fine detail
            for wx in range(x + 5, x + w - 6, 9):
                if rng.random() < 0.55:
                    d.rectangle((wx, wy, wx + 4, wy + 6), fill=(255, 220, 120))
        x += w + int(rng.integers(2, 8))
    return img


def _still_life(rng: np.random.Generator) -> Image.Image:
    yy, xx = np.mgrid[0 : SIZE[1], 0 : SIZE[0]]
    checker = ((xx // 24 + yy // 24) % 2).astype(float)
    arr = np.where(
        (yy > 230)[..., None],
        150 + 70 * checker[..., None],
        _gradient((200, 190, 170), (160, 150, 140)),
    )
    arr[229:232] = (60, 40, 30)  # table edge
    for cx, cy, r, color in (
        (140, 220, 70, (200, 40, 40)),
        (290, 240, 55, (40, 160, 60)),
        (400, 210, 80, (230, 180, 30)),
    ):
        dist = np.hypot(xx - cx, yy - cy) / r
        inside = dist < 1
        light = np.clip(1.2 - np.hypot(xx - cx + r / 3, yy - cy + r / 3) / r, 0.25, 1.0)
        arr[inside] = (np.array(color) * light[..., None])[inside]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.text((20, 16), "Preference Studio", fill=(30, 30, 30), font=ImageFont.load_default(28))
    return img
