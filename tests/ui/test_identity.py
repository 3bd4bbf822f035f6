"""Labeler identity and ownership rules: derived browser ids, claimed names, keys."""

from __future__ import annotations

import pytest

from ranker.labelers import IdentityError
from tests.ui.helpers import make_context, make_project
from ui.context import StudioContext
from ui.identity import (
    api_labeler,
    browser_claim,
    clean_name,
    is_owner,
    join,
    labelers,
    resolve_labeler,
)


def test_labeler_order_hf_then_typed_then_anonymous(tmp_path):
    ctx = StudioContext(data_dir=tmp_path)
    token = "ab" * 16
    assert resolve_labeler(ctx, "alice", "Bob", token) == "hf:alice"
    assert resolve_labeler(ctx, None, "Bob", token) == "Bob"
    anon = resolve_labeler(ctx, None, "", token)
    # derived from the browser's secret: stable for it, different for another, and
    # the secret itself never appears in the public id
    assert anon.startswith("anon-") and anon == resolve_labeler(ctx, None, None, token)
    assert anon != resolve_labeler(ctx, None, None, "cd" * 16) and token not in anon


@pytest.mark.parametrize("bad", ["a#next", "x" * 65, "<b>", "anon-cafe", "hf:alice", "import"])
def test_bad_names_are_refused(bad):
    with pytest.raises(IdentityError):
        clean_name(bad)


def test_owner_rules(tmp_path, monkeypatch):
    local = StudioContext(data_dir=tmp_path / "a")
    assert is_owner(local)  # local, no token: the local user owns everything
    tokened = StudioContext(data_dir=tmp_path / "b", admin_token="s3cret")
    assert not is_owner(tokened) and not is_owner(tokened, "wrong")
    assert is_owner(tokened, "s3cret")
    space = StudioContext(data_dir=tmp_path / "c", on_space=True)
    monkeypatch.setenv("SPACE_AUTHOR_NAME", "owner")
    assert not is_owner(space) and not is_owner(space, hf_username="visitor")
    assert is_owner(space, hf_username="owner")


def test_keys_and_claims(tmp_path):
    ctx = make_context(tmp_path, admin_token="tok")
    project = make_project(ctx, "p", tmp_path / "imgs", n=4)
    other = make_project(ctx, "q", tmp_path / "imgs2", n=4)
    got = join(ctx, project, "alice", None, None)
    assert (
        got["labeler"] == "alice" and api_labeler(ctx, project, got["key"], None, None) == "alice"
    )
    with pytest.raises(IdentityError, match="already taken"):
        join(ctx, project, "alice", None, None)  # a second caller cannot take the name
    with pytest.raises(IdentityError, match="another project"):
        api_labeler(ctx, other, got["key"], None, None)
    forged = got["key"][:-4] + ("0000" if not got["key"].endswith("0000") else "1111")
    with pytest.raises(IdentityError, match="not valid"):
        api_labeler(ctx, project, forged, None, None)
    with pytest.raises(IdentityError, match="key from /join"):
        api_labeler(ctx, project, "alice", None, None)  # a plain name: owner only
    assert api_labeler(ctx, project, "alice", "tok", None) == "alice"
    owner_key = join(ctx, project, "alice", "tok", None)["key"]  # the owner, explicitly
    assert api_labeler(ctx, project, owner_key, None, None) == "alice"
    # a browser cannot use a name a key holds, and a key's name is not the browser's
    with pytest.raises(IdentityError, match="already taken"):
        browser_claim(ctx, project, "alice", "ab" * 16)
    browser_claim(ctx, project, "bob", "ab" * 16)
    browser_claim(ctx, project, "bob", "ab" * 16)  # the same browser again: fine
    with pytest.raises(IdentityError, match="already taken"):
        browser_claim(ctx, project, "bob", "cd" * 16)
    with pytest.raises(IdentityError, match="already taken"):
        join(ctx, project, "bob", None, None)
    assert labelers(ctx).holder_of(project.row.id, "bob").startswith("browser:")


def test_names_with_old_votes_need_the_owner(tmp_path):
    ctx = make_context(tmp_path, admin_token="tok")
    project = make_project(ctx, "p", tmp_path / "imgs", n=4)
    pair = project.next_pair("carol")
    project.vote(pair.pair_id, "left", "carol")  # voted before names were claimed
    with pytest.raises(IdentityError, match="before names were claimed"):
        join(ctx, project, "carol", None, None)
    assert join(ctx, project, "carol", "tok", None)["labeler"] == "carol"


def test_one_secret_when_first_requests_race(tmp_path):
    """Keys issued by any thread verify in every other: one secret, made once."""
    import threading

    ctx = make_context(tmp_path)
    project = make_project(ctx, "p", tmp_path / "imgs", n=3)
    keys: list[str] = []
    threads = [
        threading.Thread(
            target=lambda k=k: keys.append(join(ctx, project, f"n{k}", None, None)["key"])
        )
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(api_labeler(ctx, project, k, None, None) for k in keys) == [
        f"n{k}" for k in range(8)
    ]
