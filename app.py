"""Preference Studio: rank images pairwise, publish the preferences, fine-tune and score.

``python app.py`` starts the app locally with a demo project ready to rank; on a
Hugging Face Space the same file is the entry point. Importing this module is
cheap (no gradio, torch, model or network): :func:`build_demo` does the work.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import logging
import os
import secrets
import socket
import sys
from typing import TYPE_CHECKING

from ui.context import StudioContext

if TYPE_CHECKING:
    import gradio as gr

# (tab label, module, builder): one small module per tab, each `builder(ctx) -> None`.
TABS = (
    ("Ranking", "ui.ranking.tab", "build_ranking_tab"),
    ("Dataset", "ui.dataset.tab", "build_dataset_tab"),
    ("Scoring", "ui.scoring.tab", "build_scoring_tab"),
    ("Training", "ui.training.tab", "build_training_tab"),
)

log = logging.getLogger("preference_studio")
MAX_FILE_SIZE = "1gb"  # largest single upload (STUDIO_MAX_FILE_SIZE, e.g. "200mb")


def build_demo(ctx: StudioContext | None = None) -> gr.Blocks:
    """Compose the app from the per-tab builders; nothing is launched here."""
    import gradio as gr

    ctx = ctx or StudioContext.from_env()
    with gr.Blocks(title="Preference Studio") as demo:
        gr.Markdown(
            "# Preference Studio\n"
            "Rank images two at a time, publish the judgements as a dataset, "
            "fine-tune JoyQuality on them, and score and bucket any number of images."
        )
        for label, module, builder in TABS:
            with gr.Tab(label, id=label.lower()):
                getattr(importlib.import_module(module), builder)(ctx)
    from ui.policy import UndeclaredEvent, audit

    missing = audit(demo)
    if missing:  # every event needs a declared role before the app may start
        raise UndeclaredEvent(f"events without a role in ui.policy.ROLES: {', '.join(missing)}")
    demo.studio_context = ctx
    return demo


def launch_options(ctx: StudioContext) -> dict:
    """Keyword arguments for ``demo.launch``: served folders, page head (keys) and CSS.

    Only generated copies (display cache, exports) are served; originals never are.
    Display copies have their own route (:func:`ui.thumbnails.media_route`), so their
    URLs carry no server path.
    """
    from ui.thumbnails import media_route

    head, css = [], []
    for _, module, _ in TABS:
        mod = importlib.import_module(module)
        head.append(getattr(mod, "HEAD", ""))
        css.append(getattr(mod, "CSS", ""))
    return {
        "allowed_paths": [str(p) for p in ctx.served_roots()],
        "head": "\n".join(h for h in head if h),
        "css": "\n".join(c for c in css if c),
        "max_file_size": os.environ.get("STUDIO_MAX_FILE_SIZE", MAX_FILE_SIZE),
        "app_kwargs": {"routes": [media_route(ctx.cache_dir)]},
    }


def is_loopback(host: str | None) -> bool:
    """True for addresses only this machine can reach (Gradio's default is 127.0.0.1)."""
    host = (host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_network_mode(ctx: StudioContext, host: str | None, port: int | None) -> str | None:
    """Never serve a network address with no owner token: make one, as Jupyter does.

    Returns the login URL (None when nothing was needed). On a Space the owner is the
    logged-in Space author, so nothing is generated there.
    """
    if ctx.admin_token or ctx.on_space or is_loopback(host):
        return None
    ctx.admin_token = secrets.token_urlsafe(24)
    shown = host if host not in (None, "0.0.0.0", "::") else socket.gethostname()
    return f"http://{shown}:{port or 7860}/?token={ctx.admin_token}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start Preference Studio.")
    parser.add_argument("--host", default=None, help="address to bind (default: gradio's)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860)")
    parser.add_argument("--data-dir", default=None, help="where votes and caches live")
    parser.add_argument("--no-demo", action="store_true", help="do not create the demo project")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    ctx = StudioContext.from_env(args.data_dir)
    login = secure_network_mode(ctx, args.host, args.port)
    if login:
        sys.stderr.write(
            "Listening on a network address with no STUDIO_ADMIN_TOKEN: owner actions need "
            f"this generated token. Open as the owner:\n    {login}\n"
        )
    from prefdata.backup_hub import restore_if_empty, start_backup

    restore_if_empty(ctx)  # STUDIO_BACKUP_REPO: a wiped Space gets its projects back first
    start_backup(ctx)
    if not args.no_demo:
        from ui.demo import ensure_demo_project

        ensure_demo_project(ctx)
    demo = build_demo(ctx)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=args.host, server_port=args.port, **launch_options(ctx))


if __name__ == "__main__":
    main()
