"""The Ranking tab's "Model in the loop" panel and its named endpoints.

The owner attaches a quality model to a project (JoyQuality, the demo model, a
finished training run: the Scoring tab's list) or detaches it. Attaching computes each
image's embedding and base score once (:mod:`model.project_loop`; torch is imported
only here, inside the handler); from then on the project's pairs and its ``auto``
order come from the model in the loop, and everyone sees how often the model
predicted the votes right before it learnt from them, and how much of the ranking
rests on votes. The owner can also export the project's online head as a model of
its own (:mod:`model.head_export`), offered afterwards as ``head: <project>`` in the
Scoring tab, the Training tab (a starting point) and this panel. Images added to an
attached project get their embeddings on intake (:func:`embed_after_intake`). Endpoints:
``attach_model``, ``detach_model`` and ``export_head`` (owner), ``model_status``
(anyone).

This module avoids ``from __future__ import annotations``: ``gr.api`` reads the return
annotations as real types.
"""

import gradio as gr

from ranker.attached import LoopStatus
from ranker.errors import StudioError
from ui.context import StudioContext
from ui.policy import require
from ui.ranking.desk import RankingDesk

HELP = (
    "With a model attached, images nobody compared yet are ranked by the model's online "
    "head, which learns from every vote; voted images are ranked by their votes. "
    "*Agreement* is how often the head predicted a vote right before it learnt from it "
    "(held-out), so it shows whether the model helps. When the votes alone predict "
    "better, the project's own pair strategy takes over (the guard) until the model "
    "catches up. *Export head* saves the head as a model (the attached model with the "
    "head as its scoring layer), offered as `head: <project>` for scoring and as a "
    "starting point for training; each image's own votes (its offset from the head) "
    "stay in the project and are not part of that model."
)


def status_markdown(status: LoopStatus) -> str:
    """One line for the progress bar and the panel; empty when no model is attached.

    >>> status_markdown(LoopStatus(True, "demo", True, votes_judged=4, agreement=0.75,
    ...     recent_agreement=0.5, on_votes=0.25, model_on=True))
    'model *demo*: agreement **75%** on 4 held-out votes (last 4: 50%) · 25% of images ranked by votes, the rest by the model'
    """
    if not status.attached:
        return ""
    if not status.ready:
        names = ", ".join(status.waiting[:5]) + (" ..." if status.missing > 5 else "")
        return (
            f"model *{status.label}* attached; {status.missing} images wait for their "
            f"embeddings ({names}): the project's own strategy ranks meanwhile "
            "(attach again to compute them)"
        )
    if status.agreement is None:
        agree = "agreement: no votes yet"
    else:
        recent = min(status.votes_judged, 20)
        agree = (
            f"agreement **{status.agreement:.0%}** on {status.votes_judged} held-out votes "
            f"(last {recent}: {status.recent_agreement:.0%})"
        )
    rest = "the rest by the model" if status.model_on else "model off (the votes predict better)"
    return (
        f"model *{status.label}*: {agree} · {status.on_votes:.0%} of images ranked by votes, {rest}"
    )


def project_status(desk: RankingDesk, project: str) -> LoopStatus:
    return desk.session(project).model_status()


def _attach(ctx: StudioContext, desk: RankingDesk, project: str, source: str) -> LoopStatus:
    from model.project_loop import attach_model
    from ui.scoring.tab import get_model, model_choices

    session = desk.session(project)
    model = get_model(ctx, source)  # only offered models; loaded once
    labels = {value: label for label, value in model_choices(ctx)}
    try:
        attach_model(session, model, source, ctx.data_dir, labels.get(source))
    except ValueError as exc:
        raise StudioError(str(exc)) from None
    return session.model_status()


def _export(ctx: StudioContext, desk: RankingDesk, project: str) -> dict:
    """Save the project's online head as a model folder; answer its name and summary."""
    from model.head_export import export_head, head_folder
    from ui.scoring.models import forget, get_model, models_dir

    session = desk.session(project)
    info = session.attached_model
    if info is None:
        raise StudioError(f"project {project!r} has no model attached")
    model = get_model(ctx, info["source"])  # the attached model, if still offered
    try:
        done = export_head(session, model, models_dir(ctx))
    except ValueError as exc:
        raise StudioError(str(exc)) from None
    forget(head_folder(models_dir(ctx), session.row.id))  # a held older export
    return done


def export_message(done: dict) -> str:
    """What the owner reads after an export."""
    guard = "" if done["model_on"] else (
        " Note: the guard has the model off (the votes alone predict better so far)."
    )  # fmt: skip
    return (
        f"Exported the online head ({done['votes']} votes) as **{done['name']}**: pick it in "
        "the Scoring tab to score images, or as the base model in the Training tab. Each "
        f"image's own votes are not part of it.{guard}"
    )


def embed_after_intake(ctx: StudioContext, session) -> str:
    """Images were added to ``session``: embed the new ones with the attached model, or
    say which wait and why (the model cannot be loaded here). Empty when no model is
    attached or nothing was new."""
    from model.checkpoint import ModelUnavailableError
    from model.project_loop import embed_on_intake
    from ui.scoring.models import get_model, gpu

    def load(source: str):
        try:
            return get_model(ctx, source)
        except gr.Error as exc:  # not offered any more, or not loadable here
            raise ModelUnavailableError(str(exc)) from None

    info = session.attached_model
    if info is None:
        return ""
    done = gpu(embed_on_intake)(session, ctx.data_dir, load)
    return done.summary(f"the attached model *{info.get('label') or info['source']}*")


def build_model_panel(
    ctx: StudioContext, desk: RankingDesk, project: gr.Dropdown, admin_token: gr.Textbox
) -> None:
    """The accordion (status for everyone, attach/detach for the owner) and the endpoints."""
    from ui.scoring.models import default_model, gpu, model_choices

    attach_gpu = gpu(_attach)  # the backbone pass runs on the GPU on a ZeroGPU Space
    with gr.Accordion("Model in the loop", open=False, elem_id="ps-model") as acc:
        status = gr.Markdown(elem_id="ps-model-status")
        gr.Markdown(f'<small class="ps-help">{HELP}</small>')
        with gr.Row():
            choice = gr.Dropdown(
                model_choices(ctx),
                value=default_model(ctx)[0],
                label="Model (owner)",
                scale=3,
                elem_id="ps-model-choice",
            )
            attach = gr.Button("Attach", variant="primary", scale=1, elem_id="ps-model-attach")
            detach = gr.Button("Detach", scale=1, elem_id="ps-model-detach")
            export = gr.Button("Export head", scale=1, elem_id="ps-model-export")

    def describe(project_: str) -> str:
        if not project_:
            return ""
        text = status_markdown(project_status(desk, project_))
        return text or "No model attached: pairs and ranking come from the votes alone."

    def on_status(project_: str):
        require(ctx, "ranking.model_panel.on_status")
        try:
            return describe(project_)
        except StudioError as exc:
            return str(exc)

    def on_attach(project_, source, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.model_panel.on_attach", token, profile)
            attach_gpu(ctx, desk, project_, source)
            return "Attached. " + describe(project_)
        except (StudioError, gr.Error) as exc:
            return f"Not attached: {exc}"

    def on_detach(project_, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.model_panel.on_detach", token, profile)
            done = desk.session(project_).detach_model()
        except StudioError as exc:
            return f"Not detached: {exc}"
        return "Detached: the votes alone rank again." if done else "No model was attached."

    def on_export(project_, token, profile: gr.OAuthProfile | None):
        try:
            require(ctx, "ranking.model_panel.on_export", token, profile)
            text = export_message(_export(ctx, desk, project_))
        except (StudioError, gr.Error) as exc:
            return f"Not exported: {exc}", gr.update()
        return text, gr.update(choices=model_choices(ctx))

    private = {"api_visibility": "private"}
    for trigger in (acc.expand, project.change):
        trigger(on_status, [project], [status], **private)
    attach.click(on_attach, [project, choice, admin_token], [status], **private)
    detach.click(on_detach, [project, admin_token], [status], **private)
    export.click(on_export, [project, admin_token], [status, choice], **private)
    register_model_api(ctx, desk, attach_gpu)


def register_model_api(ctx: StudioContext, desk: RankingDesk, attach_fn=None) -> None:
    attach_fn = attach_fn or _attach

    def attach_model(
        project: str,
        model: str = "",
        admin_token: str = "",
        profile: gr.OAuthProfile | None = None,
    ) -> dict:
        """Attach a model to a project (owner only): ``model`` is one of /scoring_models
        (default: the preselected one). Computes every image's embedding once; returns
        the status (as /model_status)."""
        require(ctx, "attach_model", admin_token, profile)
        try:
            return attach_fn(ctx, desk, project, model or default_source(ctx)).as_dict()
        except StudioError as exc:
            raise gr.Error(str(exc)) from exc

    def detach_model(
        project: str, admin_token: str = "", profile: gr.OAuthProfile | None = None
    ) -> dict:
        """Detach the project's model (owner only): the ranking is the votes' alone again."""
        require(ctx, "detach_model", admin_token, profile)
        try:
            desk.session(project).detach_model()
            return project_status(desk, project).as_dict()
        except StudioError as exc:
            raise gr.Error(str(exc)) from exc

    def export_head(
        project: str, admin_token: str = "", profile: gr.OAuthProfile | None = None
    ) -> dict:
        """Save the project's online head as a model (owner only): the attached model's
        backbone with the head as its linear layer, offered afterwards as ``name``
        (``head: <project>``) in /scoring_models and the Training tab. Per-image offsets
        (each image's own votes) are not part of it. Returns name, project, votes,
        model_on (whether the guard lets the head rank), base_model."""
        require(ctx, "export_head", admin_token, profile)
        try:
            done = _export(ctx, desk, project)
        except StudioError as exc:
            raise gr.Error(str(exc)) from exc
        keys = ("name", "project", "votes", "model_on", "base_model")
        return {k: done[k] for k in keys}

    def model_status(project: str) -> dict:
        """attached, label, ready, missing, model_on, votes_judged, agreement (held-out:
        each vote predicted before the model learnt from it), recent_agreement, on_votes
        (share of images ranked by their own votes)."""
        require(ctx, "model_status")
        try:
            return project_status(desk, project).as_dict()
        except StudioError as exc:
            raise gr.Error(str(exc)) from exc

    for fn, name in (
        (attach_model, "attach_model"),
        (detach_model, "detach_model"),
        (export_head, "export_head"),
        (model_status, "model_status"),
    ):
        limit = 1 if name in ("attach_model", "export_head") else 4
        gr.api(fn, api_name=name, concurrency_limit=limit, concurrency_id=f"model-{name}")


def default_source(ctx: StudioContext) -> str:
    from ui.scoring.tab import default_model

    return default_model(ctx)[0]
