"""Shared fixtures: a launched Preference Studio app and a headless Chromium.

The app fixtures build the real app (``app.build_demo`` and ``app.launch_options``)
with only the tabs a test needs, on a free port, and close it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_app(ctx, tabs: tuple[str, ...] = ("Ranking",)):
    """Build and launch the app for ``ctx`` with the named tabs; returns (demo, url)."""
    import app

    saved = app.TABS
    app.TABS = tuple(t for t in saved if t[0] in tabs)
    try:
        demo = app.build_demo(ctx)
        options = app.launch_options(ctx)
    finally:
        app.TABS = saved
    demo.queue(default_concurrency_limit=8)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **options
    )
    return demo, url.rstrip("/")


@pytest.fixture
def app_factory() -> Iterator[Callable]:
    """``app_factory(ctx, tabs=("Ranking",)) -> url``; every app is closed after the test."""
    launched = []

    def factory(ctx, tabs: tuple[str, ...] = ("Ranking",)) -> str:
        demo, url = launch_app(ctx, tabs)
        launched.append(demo)
        return url

    yield factory
    for demo in launched:
        demo.close()


@pytest.fixture(scope="session")
def chromium_browser():
    """A headless Debian Chromium driven by Playwright; skipped where it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
