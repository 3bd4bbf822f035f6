"""Key press to next pair fully shown, in headless Chromium, on the demo project.

Launches the app (Ranking tab) on a fresh data folder with the demo project, opens
it in Debian's Chromium through Playwright and votes ``--votes`` times from the
keyboard. The page itself measures each vote: from the keydown event to the frame
after the next pair's two images are decoded (``img.decode()`` then two animation
frames, i.e. painted). Between votes it waits ``--think`` ms like a person would.

    python bench/browser_bench.py --votes 50
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (one set of browser flags)

PAIR = "#ps-pair .ps-pair"

# Installed in the page: times keydown -> next pair's images decoded and painted.
PROBE = """
() => {
  const b = window.__psBench = {t0: null, from: null, results: []};
  const pairEl = () => document.querySelector('#ps-pair .ps-pair');
  document.addEventListener('keydown', () => {
    b.t0 = performance.now(); b.from = pairEl()?.dataset.pairId;
  }, true);
  let busy = false;
  const check = async () => {
    const el = pairEl();
    if (busy || b.t0 === null || !el || el.dataset.pairId === b.from || !el.dataset.pairId) return;
    busy = true;
    const t0 = b.t0;
    b.t0 = null;
    const imgs = [...el.querySelectorAll('img.ps-img')];
    await Promise.all(imgs.map(i => i.decode().catch(() => null)));
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    b.results.push({ms: performance.now() - t0,
                    complete: imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0)});
    busy = false;
  };
  new MutationObserver(check).observe(document.documentElement, {childList: true, subtree: true});
}
"""


def run(votes: int, think_ms: int, headed_size: tuple[int, int]) -> dict:
    from playwright.sync_api import sync_playwright

    import app
    from ui.context import StudioContext
    from ui.demo import DEMO_PROJECT, ensure_demo_project

    with tempfile.TemporaryDirectory(prefix="browser-bench-") as tmp:
        ctx = StudioContext(data_dir=Path(tmp), sound_enabled=False)
        ensure_demo_project(ctx)
        app.TABS = tuple(t for t in app.TABS if t[0] == "Ranking")
        demo = app.build_demo(ctx)
        demo.queue(default_concurrency_limit=8)
        _, url, _ = demo.launch(
            prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.launch_options(ctx)
        )
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(
                    viewport={"width": headed_size[0], "height": headed_size[1]}
                )
                page.goto(f"{url.rstrip('/')}/?project={DEMO_PROJECT}")
                page.wait_for_selector(
                    f"{PAIR}[data-pair-id]:not([data-pair-id=''])", timeout=30_000
                )
                page.evaluate(PROBE)
                keys = ["1", "2", "ArrowLeft", "ArrowRight", "3"]
                for k in range(votes):
                    page.wait_for_timeout(think_ms)
                    page.keyboard.press(keys[k % len(keys)])
                    page.wait_for_function(
                        f"window.__psBench.results.length >= {k + 1}", timeout=10_000
                    )
                results = page.evaluate("window.__psBench.results")
                browser.close()
            stored = ctx.studio.project(DEMO_PROJECT).progress().votes
        finally:
            demo.close()
    ms = np.array([r["ms"] for r in results])
    return {
        "votes": votes,
        "stored_votes": stored,
        "all_images_complete": all(r["complete"] for r in results),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "target_p95_ms": 200,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=50)
    parser.add_argument("--think", type=int, default=300, help="ms between a pair and the key")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    t0 = time.time()
    result = run(args.votes, args.think, (1280, 900))
    result["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
