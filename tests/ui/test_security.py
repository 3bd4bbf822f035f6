"""No route serves originals or other files outside the served roots; context is inert.

Every GET route of the launched app that takes a path is tried with absolute paths,
``..`` traversal (plain and URL-encoded), ``file://`` URLs and a symlink planted
inside the display cache; none may return the bytes of an original or of a secret
file. A display copy is fetched too, so the test would notice a broken harness.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.conftest import launch_app
from tests.ui.helpers import make_context, make_project

MARKER = b"TOP-SECRET-4f9c2e"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("sec")
    secret = root / "secret.txt"
    secret.write_bytes(MARKER)
    images = root / "allowed" / "imgs"
    ctx = make_context(root, admin_token="tok", roots=[root / "allowed"])
    project = make_project(
        ctx,
        "sec",
        images,
        n=3,
        context={"default": "<script>window.__pwned=1</script>${7*7}{{7*7}}"},
    )
    link = ctx.cache_dir / "display" / "link.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    demo, url = launch_app(ctx)
    yield {
        "url": url,
        "ctx": ctx,
        "secret": secret,
        "original": project.images[0].path,
        "link": link,
        "demo": demo,
    }
    demo.close()


def _path_routes(demo) -> list[str]:
    """Paths of every GET route with a parameter, the app's own and Gradio's API router."""
    routes = []
    for r in demo.app.routes:
        inner = getattr(r, "original_router", None)
        routes += inner.routes if inner is not None else [r]
    return sorted({r.path for r in routes if "{" in r.path and "GET" in (r.methods or ())})


def _payloads(s: dict) -> list[str]:
    cache = str(s["ctx"].cache_dir / "display")
    targets = [str(s["secret"]), s["original"]]
    out = []
    for t in targets:
        rel = "../" * 12 + t.lstrip("/")
        out += [
            t,
            t.lstrip("/"),
            f"{cache}/{rel}",
            f"{cache}/{rel}".replace("../", "%2e%2e%2f"),
            f"file://{t}",
            f"{cache}/..%2f..%2f..%2f{t.lstrip('/')}",
            "//" + t.lstrip("/"),
        ]
    out.append(str(s["link"]))
    return out


def _fetch(http: httpx.Client, path: str, limit: int = 2_000_000, seconds: float = 0.5) -> bytes:
    """The first bytes a GET returns (streams such as heartbeats are cut short)."""
    body = b""
    deadline = time.monotonic() + seconds
    try:
        with http.stream("GET", path) as r:
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > limit or time.monotonic() > deadline:
                    break
    except httpx.HTTPError:  # a route that chokes on junk serves nothing either
        pass
    return body


def test_no_route_serves_files_outside_the_served_roots(served):
    secret_bytes = served["secret"].read_bytes()
    original_bytes = Path(served["original"]).read_bytes()
    tried = 0
    with httpx.Client(base_url=served["url"], timeout=3) as http:
        for route in _path_routes(served["demo"]):
            payloads = _payloads(served)
            if ":path" not in route:  # plain parameters cannot hold a slash: try encoded ones
                payloads = [p.replace("/", "%2F") for p in payloads[:3]]
            for payload in payloads:
                path = re.sub(r"\{[^}]+\}", payload.replace("\\", "\\\\"), route)
                body = _fetch(http, path)
                tried += 1
                assert secret_bytes not in body and original_bytes not in body, (route, payload)
        # the harness works: a display copy is served, and it is not the original
        pair = Client(served["url"], verbose=False).predict(
            "sec", "t", "tok", api_name="/next_pair"
        )
        r = http.get("/" + pair["left"]["url"])
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        assert r.content != original_bytes
    assert tried > 50


def _call(url: str, api_name: str, data: list) -> str:
    """One call over Gradio's HTTP API; returns the raw event stream."""
    with httpx.Client(base_url=url, timeout=10) as http:
        event = http.post(f"/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
        return http.get(f"/gradio_api/call/{api_name}/{event}").text


def test_api_never_reads_outside_the_allowed_roots(served):
    c = Client(served["url"], verbose=False)
    outside = str(served["secret"].parent)
    with pytest.raises(Exception, match="outside the folders"):
        c.predict("x1", "", None, outside, admin_token="tok", api_name="/create_project")
    # A hand-made request naming a server file as if it had been uploaded:
    forged = [{"path": str(served["secret"]), "meta": {"_type": "gradio.FileData"}}]
    events = _call(
        served["url"],
        "create_project",
        ["x2", "", forged, "", "", "active", 0, "image_ranker", 0.5, "tok"],
    )
    assert "event: error" in events  # Gradio refuses it; ui.ranking.api checks again
    names = [p["name"] for p in c.predict(api_name="/list_projects")]
    assert "x1" not in names and "x2" not in names
    pair = c.predict("sec", "t", "tok", api_name="/next_pair")
    text = str(pair)
    assert served["original"] not in text and "<script" not in text and "${" not in text


def test_display_urls_show_no_server_path(served):
    """The data folder here is outside the working folder: URLs still name no path."""
    data = served["ctx"].data_dir.resolve()
    assert not data.is_relative_to(Path.cwd())
    c = Client(served["url"], verbose=False)
    pair = c.predict("sec", "t", "tok", api_name="/next_pair")
    urls = [pair["left"]["url"], pair["right"]["url"], *pair["prefetch"]]
    with httpx.Client(base_url=served["url"], timeout=3) as http:
        for url in urls:
            assert re.fullmatch(r"studio-media/[0-9a-f]+_1024\.jpg", url), url
            r = http.get("/" + url)
            assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        page = http.get("/").text
    assert str(data) not in json.dumps(pair) and str(data) not in page


def test_media_route_serves_only_copies_in_the_display_folder(served):
    root = served["ctx"].cache_dir / "display"
    planted = root / "deadbeef_1024.jpg"  # a copy's name, but a link to a secret
    planted.symlink_to(served["secret"])
    try:
        with httpx.Client(base_url=served["url"], timeout=3) as http:
            for name in ("deadbeef_1024.jpg", "link.txt", "..%2Fsecret.txt", "x_999.jpg"):
                r = http.get(f"/studio-media/{name}")
                assert r.status_code == 404 and MARKER not in r.content, name
    finally:
        planted.unlink()
