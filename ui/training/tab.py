"""The Training tab: fine-tune JoyQuality on a project, a published dataset or a JSON file.

The run lives in a background process (:mod:`training.worker`) and reports through
its run folder, so every browser (and the page after a refresh) shows the same run;
one run at a time per app. A timer polls the run: progress, loss and accuracy curves,
the metric table of each evaluation, the log. Named endpoints for scripts:
``/training_start``, ``/training_poll``, ``/training_stop``.

Nothing heavy is imported here: torch and the model load only in the run's process.
This module avoids ``from __future__ import annotations``: ``gr.api`` reads the type
hints as real types.
"""

import functools
import html

import gradio as gr

from ui.context import StudioContext
from ui.policy import prefill_token, require

POLL_SECONDS = 2.0
HYPER_FIELDS = ("learning_rate", "lr_scheduler", "train_mode", "batch_size", "device_batch_size",
                "total_samples", "warmup_samples", "test_every", "seed")  # fmt: skip


START_WAIT_SECONDS = 20.0  # a run that fails while loading its data/model is shown as an error


def _desk(ctx: StudioContext):
    from ui.training.desk import TrainingDesk

    roots = [*ctx.allowed_roots, ctx.exports_dir, ctx.runs_dir, ctx.uploads_dir]
    data_dir = ctx.data_dir
    return TrainingDesk(ctx.runs_dir, ctx.db_path, roots, models_dir=data_dir / "models",
                        embedding_dir=data_dir / "embeddings")  # fmt: skip


def base_model_choices(ctx: StudioContext, desk) -> list[tuple[str, str]]:
    """JoyQuality, the demo model, every finished run and every project's exported
    online head (by name: ``head: <project>``), labelled for the dropdown."""
    from common.contracts import DEFAULT_MODEL_ID
    from model.demo_model import DEMO_MODEL_LABEL, DEMO_MODEL_NAME
    from model.named import exported_heads

    runs = sorted(p for p in ctx.runs_dir.glob("*/final") if (p / "config.json").is_file())
    return (
        [
            (f"JoyQuality ({DEFAULT_MODEL_ID})", DEFAULT_MODEL_ID),
            (DEMO_MODEL_LABEL, DEMO_MODEL_NAME),
        ]
        + [(f"run: {p.parent.name}", str(p)) for p in runs]
        + [(name, name) for name in exported_heads(desk.models_dir)]
    )


def _guard(fn):
    """Show user-facing errors (bad settings, busy, missing data) as a Gradio error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from training.config import ConfigError
        from training.worker import RunBusyError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, RunBusyError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc

    return wrapper


def _status_html(view: dict) -> str:
    state = view["state"]
    if state == "idle":  # no run yet: say what to do, not "-: idle, step 0/0 (0%)"
        return (
            '<div id="training-status" data-state="idle">No run yet: pick the data, a base '
            "model and a preset, then <b>Start</b>. Progress, curves and the log appear "
            "here.</div>"
        )
    failed = state == "failed"
    pct = int(round(100 * view.get("progress", 0.0)))
    run = html.escape(view.get("run") or "-")
    message = html.escape(view.get("message") or "")
    bar = (
        f'<div style="background:#e5e7eb;border-radius:4px;height:12px;width:100%">'
        f'<div style="background:#4f46e5;height:12px;border-radius:4px;width:{pct}%"></div></div>'
    )
    final = view.get("final_dir")
    tail = f"<br>Final model: <code>{html.escape(final)}</code>" if final else ""
    step = f"step {view.get('step', 0)}/{view.get('total_steps', 0)}"
    warnings = "".join(
        f'<div style="color:#b45309">&#9888; {html.escape(w)}</div>'
        for w in view.get("warnings", [])
    )
    if failed:  # red, with the error: a failed run must not read like a running one
        message = f'<span style="color:#dc2626"><b>Failed:</b> {message}</span>'
    line = f"<b>{run}</b>: {html.escape(state)}, {step} ({pct}%)<br>{message}"
    return f'<div id="training-status" data-state="{html.escape(state)}">{line}{bar}{warnings}{tail}</div>'


def _log_tail(text: str, lines: int = 200) -> str:
    return "".join(text.splitlines(keepends=True)[-lines:])


def _frames(view: dict):
    import pandas as pd

    train = pd.DataFrame(view["train"], columns=["step", "samples", "loss", "accuracy", "lr"])
    evals = pd.DataFrame(view["eval"])
    loss = train[["samples", "loss"]].assign(series="train")
    acc = train[["samples", "accuracy"]].assign(series="train")
    if not evals.empty:
        loss = pd.concat([loss, evals[["samples", "nll"]].rename(columns={"nll": "loss"})
                          .assign(series="test")])  # fmt: skip
        acc = pd.concat([acc, evals[["samples", "accuracy"]].assign(series="test")])
    table = evals.round(4) if not evals.empty else pd.DataFrame(columns=["step", "samples"])
    return loss, acc, table


def _outputs(view: dict) -> tuple:
    """Status, plots, table, log; plots and table stay hidden until there is data."""
    loss, acc, table = _frames(view)
    has_train, has_eval = bool(view["train"]), bool(view["eval"])
    return (
        _status_html(view),
        gr.update(value=loss, visible=has_train or has_eval),
        gr.update(value=acc, visible=has_train or has_eval),
        gr.update(value=table, visible=has_eval),
        _log_tail(view["log"]),
    )


def build_training_tab(ctx: StudioContext) -> None:
    """Build the tab's components and events inside the current ``gr.Tab``."""
    from training.config import PRESET_LABELS, SCHEDULERS, TRAIN_MODES
    from ui.training.desk import ZERO_GPU_NOTE, on_zero_gpu, preset_values

    desk = _desk(ctx)
    defaults = preset_values("personal")
    default_base, base_note = desk.default_base_model()
    gr.Markdown(
        "Fine-tune JoyQuality on your own preferences. Pick the data, a base model and a "
        "preset; the run continues in the background (refresh the page any time). "
        "Stopping saves a checkpoint; starting the same run name again resumes it."
    )
    zero_gpu = on_zero_gpu()
    if zero_gpu:
        gr.Markdown(f"**Training needs a dedicated GPU.** {ZERO_GPU_NOTE}")
    with gr.Row():
        with gr.Column(scale=2):
            source = gr.Radio(["project", "dataset", "json"], value="project", label="Data source")
            names = [row.name for row in ctx.studio.list_projects()]
            project = gr.Dropdown(choices=names, value=names[0] if names else None,
                                  label="Ranking project", allow_custom_value=True)  # fmt: skip
            data = gr.Textbox(label="Dataset (Hub id or local Parquet folder) or JSON file path",
                              placeholder="user/my-preferences or /path/pairs.json")  # fmt: skip
            base = gr.Dropdown(choices=base_model_choices(ctx, desk), value=default_base,
                               allow_custom_value=True,
                               label="Base model (JoyQuality, the demo model, a run or a SigLIP)")  # fmt: skip
            if base_note:
                gr.Markdown(base_note)
            preset = gr.Dropdown(choices=[(v, k) for k, v in PRESET_LABELS.items()] + [("custom", "custom")],
                                 value="personal", label="Preset")  # fmt: skip
            with gr.Accordion("Hyperparameters", open=False):
                lr = gr.Number(defaults["learning_rate"], label="learning rate")
                sched = gr.Dropdown(
                    list(SCHEDULERS), value=defaults["lr_scheduler"], label="schedule"
                )
                mode = gr.Radio(list(TRAIN_MODES), value=defaults["train_mode"], label="train mode")
                bs = gr.Number(defaults["batch_size"], precision=0, label="batch size (pairs/step)")
                dbs = gr.Number(
                    defaults["device_batch_size"], precision=0, label="device batch size"
                )
                total = gr.Number(
                    defaults["total_samples"],
                    precision=0,
                    label="total samples (pairs; 0: sized to the data)",
                )
                warm = gr.Number(defaults["warmup_samples"], precision=0, label="warmup samples")
                every = gr.Number(
                    defaults["test_every"], precision=0, label="evaluate every (pairs)"
                )
                seed = gr.Number(defaults["seed"], precision=0, label="seed")
            push = gr.Textbox(label="Push the final model to this Hub repo (optional)")
            run_name = gr.Textbox(label="Run name (optional; an existing stopped run resumes)")
            token = gr.Textbox(label="Admin token", type="password", visible=bool(ctx.admin_token))
            with gr.Row():
                start = gr.Button("Start", variant="primary", interactive=not zero_gpu)
                stop = gr.Button("Stop", variant="stop")
            notice = gr.Markdown()
        with gr.Column(scale=3):
            status = gr.HTML(_status_html(desk.poll()))
            with gr.Row():
                loss_plot = gr.LinePlot(x="samples", y="loss", color="series", title="Loss",
                                        height=260, visible=False)  # fmt: skip
                acc_plot = gr.LinePlot(x="samples", y="accuracy", color="series", title="Accuracy",
                                       height=260, y_lim=[0, 1], visible=False)  # fmt: skip
            table = gr.Dataframe(label="Test metrics at each evaluation", interactive=False,
                                 visible=False)  # fmt: skip
            logs = gr.Textbox(label="Log", lines=10, max_lines=20, autoscroll=True,
                              elem_id="training-log")  # fmt: skip

    hyper = [lr, sched, mode, bs, dbs, total, warm, every, seed]

    def on_preset(name: str):
        if name not in PRESET_LABELS:  # "custom" keeps what is in the form
            return [gr.update() for _ in HYPER_FIELDS]
        values = preset_values(name)
        return [gr.update(value=values[f]) for f in HYPER_FIELDS]

    def on_refresh_projects():
        names = [row.name for row in ctx.studio.list_projects()]
        return gr.update(choices=names, value=names[0] if names else None)

    def on_refresh_models():
        """Runs finished and heads exported since the page was built."""
        require(ctx, "training.tab.on_refresh_models")
        return gr.update(choices=base_model_choices(ctx, desk))

    @_guard
    def on_start(
        src, proj, text, base_model, preset_name, lr_, sched_, mode_, bs_, dbs_, total_, warm_,
        every_, seed_, push_repo, name, admin, profile: gr.OAuthProfile | None = None,
    ):  # fmt: skip
        require(ctx, "training.tab.on_start", admin, profile)
        values = (lr_, sched_, mode_, bs_, dbs_, total_, warm_, every_, seed_)
        form = dict(zip(HYPER_FIELDS, values, strict=True))
        form.update(source=src, data=proj if src == "project" else text, base_model=base_model,
                    preset=preset_name, push_to_hub=push_repo)  # fmt: skip
        run = desk.start(form, (name or "").strip() or None, wait_seconds=START_WAIT_SECONDS)
        return f"Started **{run}**."

    @_guard
    def on_stop(admin, profile: gr.OAuthProfile | None = None):
        require(ctx, "training.tab.on_stop", admin, profile)
        return "Stopping at the next step." if desk.stop() else "No run in progress."

    def refresh():
        return _outputs(desk.poll())

    form_fields = [source, project, data, base, preset, *hyper, run_name]

    def restore_form(profile: gr.OAuthProfile | None = None):
        """After a refresh, show the owner the settings of the run in progress (if any);
        visitors keep the blank form (the settings may name the owner's folders)."""
        caller = require(ctx, "training.tab.restore_form", None, profile)
        values = desk.active_settings() if caller.owner else None
        if values is None:
            return [gr.update() for _ in form_fields]
        src = values["source"]
        head = [src, values["data"] if src == "project" else gr.update(),
                values["data"] if src != "project" else gr.update(), values["base_model"],
                values["preset"]]  # fmt: skip
        return [*head, *(values[f] for f in HYPER_FIELDS), values["run"]]

    prefill_token(token)
    private = {"api_visibility": "private"}
    # .input, not .change: restoring a run's settings sets the preset without resetting them.
    preset.input(on_preset, [preset], hyper, **private)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(restore_form, None, form_fields, **private)
    project.focus(on_refresh_projects, None, [project], **private)
    base.focus(on_refresh_models, None, [base], **private)
    start.click(on_start, [source, project, data, base, preset, *hyper, push, run_name, token],
                [notice], concurrency_limit=1, concurrency_id="training-control", **private)  # fmt: skip
    stop.click(on_stop, [token], [notice], concurrency_id="training-control", **private)
    timer = gr.Timer(POLL_SECONDS)
    timer.tick(refresh, None, [status, loss_plot, acc_plot, table, logs], show_progress="hidden",
               concurrency_limit=None, **private)  # fmt: skip
    _register_api(ctx, desk)


def _register_api(ctx: StudioContext, desk) -> None:
    def training_start(
        source: str,
        data: str,
        base_model: str = "",
        preset: str = "personal",
        settings: dict | None = None,
        run_name: str = "",
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """Start a run (owner only). source: project, dataset or json; data: the project
        name, Hub id / Parquet folder, or JSON path; settings: TrainConfig fields such as
        learning_rate, total_samples. Returns {"run", "state"}."""
        require(ctx, "training_start", admin_token, profile)
        form = {**(settings or {}), "source": source, "data": data, "base_model": base_model,
                "preset": preset}  # fmt: skip
        run = desk.start(form, run_name or None)
        return {"run": run, "state": desk.poll(run)["state"]}

    def training_poll(run: str = "") -> dict:
        """The run's state (the active or latest one when run is empty): state, message,
        step, total_steps, progress, train curve, evaluations, data summary, log tail."""
        require(ctx, "training_poll")
        return desk.poll(run or None)

    def training_stop(
        force: bool = False, admin_token: str = "", profile: gr.OAuthProfile | None = None
    ) -> dict:
        """Stop the active run at its next step (force: terminate now); owner only."""
        require(ctx, "training_stop", admin_token, profile)
        return {"stopping": desk.stop(force=force)}

    for fn in (training_start, training_poll, training_stop):
        gr.api(_guard(fn), api_name=fn.__name__, concurrency_limit=None,
               concurrency_id=f"training-api-{fn.__name__}")  # fmt: skip
