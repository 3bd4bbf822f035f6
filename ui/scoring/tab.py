"""The Scoring tab: score uploads, a zip or a folder with JoyQuality; buckets; compare two.

Nothing heavy is imported at module level (``import app`` must not import torch):
the model code is imported inside the handlers. Which models are offered and how
they are loaded (once per source, one at a time) is :mod:`ui.scoring.models`. On a
ZeroGPU Space the scoring functions are wrapped with ``spaces.GPU``; elsewhere they
run as they are (slowly on a CPU). Named endpoints: ``score``, ``bucket``, ``compare``, ``prerank``,
``bucket_scores`` and ``scoring_models``.
"""

from __future__ import annotations

import math
import secrets
import time
from pathlib import Path

import gradio as gr

from common.paths import PathRefused, gate
from ui.context import StudioContext
from ui.policy import prefill_token, require
from ui.scoring.models import check_source, default_model, get_model, gpu, model_choices

METHODS = {"saved calibration (else equal width)": "auto", "equal width (method A)": "equal_width",
           "quantile": "quantile", "sigmoid fitted on a project's votes (method B)": "project"}  # fmt: skip
GALLERY_MAX = 120
SCORING_CONCURRENCY = 1  # model calls at once (one model in memory, CPU/GPU bound)
MAX_BUCKET_SCORES = 1_000_000


def _items(ctx: StudioContext, files: list[str] | None, folder: str | None, owner: bool) -> list:
    from model.inputs import UploadError, upload_items
    from model.sources import walk_files

    try:
        items = upload_items(files or [])
    except UploadError as exc:
        raise gr.Error(str(exc)) from None
    if folder and folder.strip():
        if not owner:  # a visitor's folder would be scored and its thumbnails served
            raise gr.Error("scoring a folder on this server needs the owner (admin token)")
        try:
            root = gate(folder.strip(), ctx.allowed_roots, kind="dir")
        except PathRefused as exc:
            raise gr.Error(str(exc)) from None
        items.extend(walk_files(root))
    if not items:
        raise gr.Error("Upload images or a zip (or give a local folder) first.")
    return items


def _labels(text: str | None) -> tuple[str, ...] | None:
    labels = tuple(s.strip() for s in (text or "").split(",") if s.strip())
    return labels or None


def _calibration(ctx, rows, method: str, labels_text: str, project: str | None, model_source: str):
    from model import calibrate

    scores = [r["score"] for r in rows]
    labels = _labels(labels_text)
    if not any(r["error"] is None for r in rows):
        return None
    if method == "project":
        from model.projects import calibration_from_project

        if not project:
            raise gr.Error("Pick the ranking project whose votes fit the calibration.")
        try:
            return calibration_from_project(
                ctx.studio.project(project), get_model(ctx, model_source), scores, labels
            )
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
    if method == "auto" and labels is None:
        saved = getattr(get_model(ctx, model_source), "calibration", None)
        if saved is not None:
            return saved
    edges = "quantile" if method == "quantile" else "equal_width"  # "auto" without a saved one
    return calibrate.calibration_for(scores, edges, labels)


def _thumbs(ctx: StudioContext, items: list, rows: list[dict], folder: Path) -> dict[str, str]:
    """Small JPEG copies of the best GALLERY_MAX images (the gallery never serves originals)."""
    from common.images import ImageReadError
    from model.preprocess import open_image
    from model.scoring import item_name

    ok = sorted(
        (i for i, r in enumerate(rows) if r["error"] is None), key=lambda i: -rows[i]["score"]
    )
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, i in enumerate(ok[:GALLERY_MAX]):
        item = items[i]
        try:
            img = open_image(item[1] if isinstance(item, tuple) else item, name=item_name(item))
        except ImageReadError:
            continue
        img.thumbnail((256, 256))
        path = folder / f"{n:04d}.jpg"
        img.save(path, quality=85)
        out[rows[i]["path"]] = str(path)
    return out


def _present(
    ctx, state: dict, method: str, labels_text: str, project: str | None, model_source: str
):
    from model.report import summary_markdown, write_tables

    rows = state["rows"]
    cal = _calibration(ctx, rows, method, labels_text, project, model_source)
    labels = cal.labels_for([r["score"] for r in rows]) if cal else [None] * len(rows)
    for row, label in zip(rows, labels, strict=True):
        row["bucket"] = label
    ranked = sorted((r for r in rows if r["path"] in state["thumbs"]), key=lambda r: -r["score"])
    gallery = [
        (state["thumbs"][r["path"]], f"{r['score']:.3f} · {r['bucket'] or ''}") for r in ranked
    ]
    hist = histogram_update([r["score"] for r in rows if r["error"] is None], cal)
    csv_path, parquet_path = write_tables(rows, Path(state["export_dir"]))
    table = [
        [r["path"], None if r["error"] else round(r["score"], 4), r["bucket"], r["error"]]
        for r in sorted(rows, key=_order)
    ]  # the files keep full precision; the page shows 4 decimals
    summary = summary_markdown(rows, cal.labels if cal else ())
    return summary, gallery, hist, table, [str(csv_path), str(parquet_path)], state


def histogram_update(scores: list[float], cal=None) -> dict:
    """The bar plot's update: bars in score order (the bin labels are text, which the
    plot would otherwise sort as text: "-9.9" after "-24.8"), hidden when empty."""
    from model.report import histogram_frame

    frame = histogram_frame(scores, cal.labels_for if cal else None)
    return gr.update(value=frame, visible=bool(scores), sort=list(frame["score"]))


def _order(row: dict) -> tuple:
    return (row["error"] is not None, -(row["score"] if row["error"] is None else 0.0))


def build_scoring_tab(ctx: StudioContext) -> None:
    """Build the tab's components and events inside the current ``gr.Tab``."""

    @gpu
    def _score_rows(source: str, items: list, progress=None) -> list[dict]:
        from model.scoring import default_workers, score_images

        model = get_model(ctx, source)
        workers = min(4, default_workers()) if len(items) >= 64 and not ctx.on_space else 0
        return score_images(model, items, batch_size=16 if model.device.type == "cpu" else 64,
                            num_workers=workers, progress=progress)  # fmt: skip

    def score(
        files,
        folder,
        source,
        method,
        labels_text,
        project,
        token=None,
        profile: gr.OAuthProfile | None = None,
        progress=gr.Progress(),  # noqa: B008
    ):
        """Score uploaded images, a zip or a folder; returns summary, gallery, histogram, table, files."""
        caller = require(ctx, "score", token, profile)
        check_source(ctx, source)  # before any work: only offered models
        items = _items(ctx, files, folder, caller.owner)
        progress(0, desc="loading the model")
        get_model(ctx, source)
        # A ZeroGPU worker cannot call back into this process: progress there is coarse.
        report = None if ctx.on_space else (lambda d, t: progress(d / t, desc=f"scored {d}/{t}"))
        rows = _score_rows(source, items, report)
        from ui.exports import new_export_dir

        stamp = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_urlsafe(18)
        state = {"rows": rows, "export_dir": str(new_export_dir(ctx))}
        state["thumbs"] = _thumbs(ctx, items, rows, ctx.cache_dir / "scoring" / stamp)
        return _present(ctx, state, METHODS.get(method, method), labels_text, project, source)

    def bucket(state, source, method, labels_text, project):
        """Re-bucket the last scored images with another method or other labels (no rescoring)."""
        require(ctx, "bucket")
        if not state or not state.get("rows"):
            raise gr.Error("Score some images first.")
        return _present(ctx, state, METHODS.get(method, method), labels_text, project, source)

    def compare(image_a, image_b, source) -> str:
        """P(A beats B) = sigmoid(s_A - s_B) for two images."""
        from model.scoring import win_probability

        require(ctx, "compare")
        if not image_a or not image_b:
            raise gr.Error("Give two images to compare.")
        rows = _score_rows(source, [("A", image_a), ("B", image_b)])
        bad = [f"{r['path']}: {r['error']}" for r in rows if r["error"]]
        if bad:
            raise gr.Error("Unreadable image " + "; ".join(bad))
        sa, sb = rows[0]["score"], rows[1]["score"]
        p = win_probability(sa, sb)
        return f"Score A **{sa:.3f}**, score B **{sb:.3f}**: P(A beats B) = **{p:.1%}**"

    def prerank(
        project, source, agreement, token=None, profile: gr.OAuthProfile | None = None
    ) -> str:
        """Seed a ranking project's ratings from the model's scores (owner only)."""
        from model.projects import prerank_project

        require(ctx, "prerank", token, profile)
        if not isinstance(agreement, int | float) or not 0.5 < float(agreement) < 1:
            raise gr.Error("agreement must be a number between 0.5 and 1")
        if not project:
            raise gr.Error("Pick a ranking project.")
        try:
            info = prerank_project(
                ctx.studio.project(project), get_model(ctx, source), float(agreement)
            )
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return f"Pre-ranked **{info['seeded']}** of {info['images']} images of *{project}* (agreement {agreement:.0%})."

    def bucket_scores(
        scores: list[float],
        method: str = "equal_width",
        labels: str = "",
        tau: float = 1.0,
        b: float = 0.0,
    ) -> list[str | None]:
        """Bucket labels for scores: method equal_width, quantile, or sigmoid (tau, b)."""
        from model.calibrate import calibration_for

        require(ctx, "bucket_scores")
        if not isinstance(scores, list) or len(scores) > MAX_BUCKET_SCORES:
            raise gr.Error(f"scores must be a list of at most {MAX_BUCKET_SCORES} numbers")
        if not all(isinstance(s, int | float) and math.isfinite(s) for s in scores):
            raise gr.Error("scores must be finite numbers (no NaN or infinity)")
        try:
            return calibration_for(scores, method, _labels(labels), tau=tau, b=b).labels_for(scores)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None

    def scoring_models() -> list[str]:
        """Model sources the tab offers (the default and finished training runs)."""
        require(ctx, "scoring_models")
        return [value for _, value in model_choices(ctx)]

    projects = [row.name for row in ctx.studio.list_projects()]
    gr.Markdown(
        "Score images with JoyQuality or your fine-tune, sort them, and turn the scores into quality buckets."
    )
    default_source, note = default_model(ctx)
    if note:
        gr.Markdown(note)
    with gr.Row():
        with gr.Column(scale=2):
            # No file_types filter: a non-image upload is scored as "unreadable", by name.
            files = gr.File(label="Images or a zip", file_count="multiple")
            folder = gr.Textbox(label="Local folder (on this server)", visible=bool(ctx.allowed_roots),
                                placeholder=str(ctx.allowed_roots[0]) if ctx.allowed_roots else "")  # fmt: skip
        with gr.Column(scale=1):
            model = gr.Dropdown(choices=model_choices(ctx), value=default_source, allow_custom_value=True,
                                label="Model (default, a Hub id, or a training run)")  # fmt: skip
            refresh = gr.Button("Refresh runs", size="sm")
            method = gr.Dropdown(list(METHODS), value=list(METHODS)[0], label="Buckets")
            labels = gr.Textbox(label="Bucket labels, worst first (comma-separated; empty: default)",
                                placeholder="worst quality, low quality, average quality, high quality, best quality")  # fmt: skip
            project = gr.Dropdown(
                projects,
                value=projects[0] if projects else None,
                label="Ranking project (for method B and pre-ranking)",
            )
    with gr.Row():
        go = gr.Button("Score", variant="primary")
        rebucket = gr.Button("Re-bucket")
    summary = gr.Markdown()
    state = gr.State()
    gallery = gr.Gallery(label="Best first", columns=6, height="auto", show_label=True)
    hist = gr.BarPlot(x="score", y="images", color="bucket", x_title="score (bin centre)",
                      y_title="images", title="Score histogram", height=240, visible=False,
                      sort=None)  # fmt: skip
    with gr.Accordion("Table and downloads", open=False):
        table = gr.Dataframe(headers=["path", "score", "bucket", "error"], interactive=False)
        downloads = gr.File(label="CSV and Parquet", file_count="multiple", interactive=False)
    with gr.Accordion("Compare two images", open=False):
        with gr.Row():
            image_a = gr.Image(type="filepath", label="A")
            image_b = gr.Image(type="filepath", label="B")
        compare_btn = gr.Button("Compare")
        verdict = gr.Markdown()
    with gr.Accordion("Pre-rank a ranking project", open=False):
        gr.Markdown(
            "Seed the project's ratings from the model's scores, so human votes go where the model is unsure."
        )
        agreement = gr.Slider(
            0.55, 0.95, value=0.75, step=0.01, label="How often the model agrees with people"
        )
        prerank_btn = gr.Button("Pre-rank")
        prerank_out = gr.Markdown()

    outputs = [summary, gallery, hist, table, downloads, state]
    token = gr.Textbox(label="Admin token (folders, pre-ranking)", type="password",
                       visible=bool(ctx.admin_token))  # fmt: skip
    prefill_token(token)
    go.click(score, [files, folder, model, method, labels, project, token], outputs,
             api_name="score", concurrency_limit=SCORING_CONCURRENCY, concurrency_id="scoring")  # fmt: skip
    rebucket.click(bucket, [state, model, method, labels, project], outputs, api_name="bucket")
    compare_btn.click(compare, [image_a, image_b, model], verdict, api_name="compare",
                      concurrency_limit=SCORING_CONCURRENCY, concurrency_id="scoring")  # fmt: skip
    prerank_btn.click(prerank, [project, model, agreement, token], prerank_out, api_name="prerank",
                      concurrency_limit=SCORING_CONCURRENCY, concurrency_id="scoring")  # fmt: skip

    def refresh_models():
        require(ctx, "refresh_models")
        return gr.Dropdown(choices=model_choices(ctx))

    refresh.click(refresh_models, None, model, api_name="refresh_models")
    gr.api(bucket_scores, api_name="bucket_scores")
    gr.api(scoring_models, api_name="scoring_models")
