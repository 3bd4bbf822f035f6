"""A hostile visitor against the launched app, through Gradio's HTTP API.

Every probe of issue "Safe on a public Space" is tried as a script would: forged
identities, paths outside the allowed roots (``../``, symlinks, cells of uploaded
JSON/Parquet files), a Hub model id for /score, a guessed export URL, a zip bomb,
a restart, and each malformed input. Each is refused with a message naming the
fault, and nothing already saved changes.
"""

from __future__ import annotations

import json
import resource
import struct
import time
import zlib
from pathlib import Path

import httpx
import pandas as pd
import pytest
from gradio_client import Client, handle_file

import app
from tests.conftest import launch_app
from tests.ui.helpers import make_context, make_images, make_project
from ui.policy import OWNER, ROLES, audit, event_key

TOKEN = "owner-token"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    allowed = root / "allowed"
    outside = make_images(root / "outside", 2, size=(41, 31))
    ctx = make_context(root, admin_token=TOKEN, roots=[allowed])
    project = make_project(ctx, "p", allowed / "imgs", n=12)
    demo, url = launch_app(ctx, tabs=("Ranking", "Dataset", "Scoring"))
    yield {"url": url, "ctx": ctx, "root": root, "outside": outside, "project": project}
    demo.close()


@pytest.fixture(scope="module")
def c(site):
    return Client(site["url"], verbose=False)


def _refused(c: Client, match: str, *args, **kwargs) -> None:
    with pytest.raises(Exception, match=match):
        c.predict(*args, **kwargs)


# --- one policy ---------------------------------------------------------------------------
def test_every_event_of_the_full_app_has_a_declared_role(tmp_path):
    demo = app.build_demo(make_context(tmp_path))  # all tabs
    keys = {event_key(f) for f in demo.fns.values() if f.fn is not None}
    assert audit(demo) == []
    assert keys <= set(ROLES) and set(ROLES) <= keys, set(ROLES) ^ keys  # no stale rows
    assert {"join", "next_pair", "vote", "prerank", "dataset_preview"} <= keys


OWNER_CALLS = {  # every owner endpoint of the launched tabs: harmless arguments, token name
    "create_project": (("x", "", None, "imgs"), "admin_token"),
    "export": (("p", "json"), "admin_token"),
    "delete_project": (("p",), "admin_token"),
    "dataset_export": (("p", "parquet", 0.1, 0, "publish"), "token"),
    "dataset_push": (("p", "user/repo", True, "", 0.1, 0, "publish"), "token"),
    "dataset_import": (("user/repo", None, "", ""), "token"),
    "backup_now": ((), "token"),
    "prerank": (("p", "", 0.75), "token"),
    "attach_model": (("p", ""), "admin_token"),
    "detach_model": (("p",), "admin_token"),
    "export_head": (("p",), "admin_token"),
}


def test_every_owner_endpoint_refuses_visitors(c, site):
    launched = {k for k, role in ROLES.items() if role is OWNER and "." not in k}
    assert launched - {"training_start", "training_stop"} == set(OWNER_CALLS)
    projects = [p.name for p in site["ctx"].studio.list_projects()]
    for name, (args, token) in OWNER_CALLS.items():
        for given in ("", "wrong-token"):
            _refused(c, "needs the owner", *args, **{token: given}, api_name=f"/{name}")
    assert [p.name for p in site["ctx"].studio.list_projects()] == projects


def test_visitors_see_pseudonyms_in_the_preview(c, site):
    key = c.predict("p", "preview-voter", api_name="/join")["key"]
    pair = c.predict("p", key, api_name="/next_pair")
    c.predict("p", key, pair["pair_id"], "left", api_name="/vote")
    _, rows, _ = c.predict("p", 0.0, 0, "publish", api_name="/dataset_preview")
    assert rows["data"] and "preview-voter" not in json.dumps(rows)
    _, rows, _ = c.predict("p", 0.0, 0, "publish", TOKEN, api_name="/dataset_preview")
    assert "preview-voter" in json.dumps(rows)  # the owner sees the names


# --- identity ----------------------------------------------------------------------------
def test_forged_identities_are_refused_and_change_nothing(c, site):
    alice = c.predict("p", "alice", api_name="/join")["key"]
    pair = c.predict("p", alice, api_name="/next_pair")
    after = c.predict("p", alice, pair["pair_id"], "left", api_name="/vote")
    votes = site["project"].progress().votes
    _refused(c, "already taken", "p", "alice", api_name="/join")
    _refused(c, "key from /join", "p", "alice", api_name="/undo")  # a free name
    _refused(c, "key from /join", "p", "hf:alice", api_name="/vote", pair_id="x", outcome="left")
    _refused(c, "letters, digits", "p", "hf:alice", api_name="/join")  # OAuth's namespace
    _refused(c, "imported votes", "p", "import", api_name="/join")
    forged = alice[:-6] + ("aaaaaa" if not alice.endswith("aaaaaa") else "bbbbbb")
    _refused(c, "not valid", "p", forged, api_name="/undo")
    mallory = c.predict("p", "mallory", api_name="/join")["key"]
    undone = c.predict("p", mallory, api_name="/undo")  # only ever her own votes
    assert undone["message"] == "Nothing to undo."
    stolen = c.predict("p", mallory, after["pair_id"], "right", api_name="/vote")
    assert "no longer open" in stolen["message"]  # alice's pair does not answer for her
    assert site["project"].progress().votes == votes
    assert c.predict("p", alice, api_name="/next_pair")["pair_id"] == after["pair_id"]
    # the owner can act for a labeler, explicitly
    assert c.predict("p", "alice", TOKEN, api_name="/undo")["message"].startswith("Undid")


# --- paths -------------------------------------------------------------------------------
def test_paths_outside_the_roots_are_refused(c, site):
    root, outside = site["root"], site["outside"]
    for folder in (str(outside[0].parent), "../outside", "imgs/../../outside"):
        _refused(
            c,
            "outside the folders",
            "o1",
            "",
            None,
            folder,
            admin_token=TOKEN,
            api_name="/create_project",
        )
    # a symlink inside an allowed folder pointing outside: refused, not read, not served
    linked = root / "allowed" / "linked"
    make_images(linked, 2)
    (linked / "escape.png").symlink_to(outside[0])
    summary = c.predict("linked", "", None, "linked", admin_token=TOKEN, api_name="/create_project")
    assert "escape.png" in summary and "outside the folder" in summary
    paths = {img.path for img in site["ctx"].studio.project("linked").images}
    assert str(outside[0]) not in paths and len(paths) == 2
    # dataset sources by path: outside the roots refused, without revealing existence
    _refused(c, "outside the folders", str(outside[0].parent), None, "", "", TOKEN,
             api_name="/dataset_import")  # fmt: skip


@pytest.mark.parametrize("kind", ["json", "parquet"])
def test_image_paths_in_dataset_cells_must_stay_inside(c, site, tmp_path, kind):
    secret = site["outside"][1]
    rel = "../" * 12 + str(secret).lstrip("/")
    if kind == "json":
        path = tmp_path / "joy.json"
        path.write_text(json.dumps({"train": [[str(secret), rel, 1]]}))
    else:
        path = tmp_path / "pairs.parquet"
        pd.DataFrame(
            {"image_0": [str(secret)], "image_1": [rel], "label_0": [1.0], "label_1": [0.0]}
        ).to_parquet(path)
    before = [p.name for p in site["ctx"].studio.list_projects()]
    with pytest.raises(Exception) as err:
        c.predict("", [handle_file(str(path))], "cells-" + kind, "", TOKEN,
                  api_name="/dataset_import")  # fmt: skip
    assert "no usable votes" in str(err.value) or "not a file inside" in str(err.value)
    assert [p.name for p in site["ctx"].studio.list_projects()] == before


def test_scoring_takes_only_offered_models_and_no_visitor_folders(c, site):
    method = "equal width (method A)"
    _refused(c, "not offered here", None, "", "someone/huge-model", method, "", "p",
             api_name="/score")  # fmt: skip
    _refused(c, "needs the owner", None, str(site["root"] / "allowed"), "", method, "", "p",
             api_name="/score")  # fmt: skip
    assert c.predict(api_name="/scoring_models") == offered_models(site["ctx"])


def offered_models(ctx) -> list[str]:
    """What a fresh server offers: JoyQuality and the locally built demo model, nothing else."""
    from common.contracts import DEFAULT_MODEL_ID
    from model.demo_model import DEMO_MODEL_NAME

    return [DEFAULT_MODEL_ID, DEMO_MODEL_NAME]  # names, never server folders


# --- exports -----------------------------------------------------------------------------
def test_exports_are_unguessable_and_carry_no_server_paths(c, site, monkeypatch):
    path = Path(c.predict("p", "parquet", 0.1, 0, "publish", TOKEN, api_name="/dataset_export"))
    folder = path.parent.parent.name if path.parent.name != "exports" else ""
    real = next(site["ctx"].exports_dir.glob("*/*.zip"))
    assert len(real.parent.name) >= 32 and real.name.startswith("p-parquet-")
    stamp = real.name.removeprefix("p-parquet-")
    with httpx.Client(base_url=site["url"], timeout=5) as http:
        guessed = f"/gradio_api/file={site['ctx'].exports_dir}/p-parquet-{stamp}"
        assert http.get(guessed).status_code in (403, 404)
    csv = c.predict("p", "image_ranker_comparisons", TOKEN, api_name="/export")
    assert str(site["root"]) not in csv
    # image URLs name the display copy relative to the working folder (the default
    # data folder, studio_data, sits below it), and are still served
    monkeypatch.chdir(site["root"])
    key = c.predict("p", "urls2", api_name="/join")["key"]
    pair = c.predict("p", key, api_name="/next_pair")
    assert str(site["root"]) not in json.dumps(pair)
    with httpx.Client(base_url=site["url"], timeout=5) as http:
        assert http.get("/" + pair["left"]["url"]).content[:2] == b"\xff\xd8"
    del folder


# --- limits ------------------------------------------------------------------------------
def zeros_zip(path: Path, size: int = 1 << 30) -> Path:
    """A zip of ``size`` zero bytes, built from one compressed block repeated (fast)."""
    block = 1 << 24
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = co.compress(bytes(block)) + co.flush(zlib.Z_FULL_FLUSH)
    data = chunk * (size // block) + b"\x03\x00"
    crc = 0
    zero = bytes(block)
    for _ in range(size // block):
        crc = zlib.crc32(zero, crc)
    name = b"zeros.bin"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size,
                        len(name), 0) + name  # fmt: skip
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data),
                          size, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)  # fmt: skip
    path.write_bytes(local + data + central + end)
    return path


def test_a_zip_bomb_is_refused_at_once(c, site, tmp_path):
    bomb = zeros_zip(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 2_000_000
    upload = handle_file(str(bomb))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the app runs in-process
    start = time.perf_counter()
    _refused(c, "zip bomb", "bomb", "", [upload], admin_token=TOKEN, api_name="/create_project")
    elapsed = time.perf_counter() - start
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    assert elapsed < 1.0 and grown_mb < 100, (elapsed, grown_mb)
    assert "bomb" not in [p.name for p in site["ctx"].studio.list_projects()]
    assert not list(site["ctx"].uploads_dir.glob("bomb*"))  # nothing of it kept


# --- restarts ----------------------------------------------------------------------------
def test_reservations_survive_a_restart(tmp_path):
    ctx = make_context(tmp_path, admin_token=TOKEN)
    make_project(ctx, "r", tmp_path / "imgs", n=30)
    demo, url = launch_app(ctx)
    c = Client(url, verbose=False)
    held = set()
    for i in range(16):
        key = c.predict("r", f"early{i}", api_name="/join")["key"]
        c.predict("r", key, api_name="/next_pair")
    demo.close()
    session = ctx.studio.project("r")
    ctx.studio.store.close()
    for a in session.store.__class__(ctx.db_path).assignments(session.row.id).values():
        held.add(frozenset((a.left_uid, a.right_uid)))
    assert len(held) >= 16
    again = make_context(tmp_path, admin_token=TOKEN)  # a fresh process: nothing in memory
    demo, url = launch_app(again)
    try:
        c = Client(url, verbose=False)
        for i in range(16):
            key = c.predict("r", f"late{i}", api_name="/join")["key"]
            pair = c.predict("r", key, api_name="/next_pair")
            left, right = pair["left"]["uid"], pair["right"]["uid"]
            assert frozenset((left, right)) not in held, i
    finally:
        demo.close()


# --- bad input ---------------------------------------------------------------------------
def _raw(url: str, api_name: str, data: list) -> str:
    """One call over Gradio's HTTP API with hand-made (ill-typed) data; the event stream."""
    body = json.dumps({"data": data})  # ASCII, so lone surrogates travel as \\ud800 escapes
    with httpx.Client(base_url=url, timeout=20) as http:
        post = http.post(f"/gradio_api/call/{api_name}", content=body,
                         headers={"content-type": "application/json"})  # fmt: skip
        event = post.json()["event_id"]
        return http.get(f"/gradio_api/call/{api_name}/{event}").text


def _files(tmp_path: Path, name: str, data: bytes) -> list:
    path = tmp_path / name
    path.write_bytes(data)
    return [handle_file(str(path))]


def test_each_bad_input_gets_a_message(c, site, tmp_path):
    make = ("bad", "", None, "imgs")
    _refused(c, "unknown strategy", *make, strategy="nope", admin_token=TOKEN,
             api_name="/create_project")  # fmt: skip
    _refused(c, "unknown rating preset", *make, rating_preset="nope", admin_token=TOKEN,
             api_name="/create_project")  # fmt: skip
    _refused(c, "whole number up to", *make, budget=1e308, admin_token=TOKEN,
             api_name="/create_project")  # fmt: skip
    events = _raw(site["url"], "create_project",
                  ["bad", "", None, "imgs", "", "active", 0, "image_ranker", "NaN", TOKEN])  # fmt: skip
    assert "event: error" in events and "finite" in events
    _refused(c, "between 0 and 1", *make, random_share=7.5, admin_token=TOKEN,
             api_name="/create_project")  # fmt: skip
    _refused(c, "at most 2,000", "bad", "x" * 1_000_000, None, "imgs", admin_token=TOKEN,
             api_name="/create_project")  # fmt: skip
    events = _raw(site["url"], "next_pair", ["p", ["a", "list"], "", None])
    assert "event: error" in events and "must be text" in events
    events = _raw(site["url"], "join", ["p", "bad\ud800name", ""])  # a lone surrogate
    assert "event: error" in events and "letters, digits" in events
    for name, data, fault in (
        ("binary.json", bytes(range(256)) * 4, "could not be read|not valid|JSON"),
        ("garbage.parquet", b"PAR1" + b"\x00junk" * 50, "could not be read|Parquet|parquet"),
        ("nested.json", b"[" * 100_000 + b"]" * 100_000, "nests too deeply|could not be read"),
    ):
        _refused(c, fault, "", _files(tmp_path, name, data), "bad-import", "", TOKEN,
                 api_name="/dataset_import")  # fmt: skip
    assert "bad" not in [p.name for p in site["ctx"].studio.list_projects()]
    assert "bad-import" not in [p.name for p in site["ctx"].studio.list_projects()]
