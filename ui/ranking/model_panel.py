"""The Ranking tab's "Model in the loop" panel and its named endpoints.

The owner attaches a quality model to a project (JoyQuality, the demo model, a
finished training run: the Scoring tab's list) or detaches it. Attaching computes each
image's embedding and base score once (:mod:`model.project_loop`; torch is imported
only here, inside the handler); from then on the project's pairs and its ``auto``
order come from the model in the loop, and everyone sees how often the model
predicted the votes right before it learnt from them, and how much of the ranking
rests on votes. Endpoints: ``attach_model`` and ``detach_model`` (owner),
``model_status`` (anyone).

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
    "catches up."
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
        return (
            f"model *{status.label}* attached; {status.missing} images still need their "
            "embeddings (attach again to compute them): the project's own strategy ranks meanwhile"
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

    private = {"api_visibility": "private"}
    for trigger in (acc.expand, project.change):
        trigger(on_status, [project], [status], **private)
    attach.click(on_attach, [project, choice, admin_token], [status], **private)
    detach.click(on_detach, [project, admin_token], [status], **private)
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
        (model_status, "model_status"),
    ):
        limit = 1 if name == "attach_model" else 4
        gr.api(fn, api_name=name, concurrency_limit=limit, concurrency_id=f"model-{name}")


def default_source(ctx: StudioContext) -> str:
    from ui.scoring.tab import default_model

    return default_model(ctx)[0]
