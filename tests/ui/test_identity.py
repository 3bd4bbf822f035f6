"""Labeler identity and ownership rules."""

from __future__ import annotations

import pytest

from ui.context import StudioContext
from ui.identity import IdentityError, clean_name, is_owner, resolve_labeler


def test_labeler_order_hf_then_typed_then_anonymous():
    assert resolve_labeler("alice", "Bob", "anon-1234abcd") == "hf:alice"
    assert resolve_labeler(None, "Bob", "anon-1234abcd") == "Bob"
    assert resolve_labeler(None, "", "anon-1234abcd") == "anon-1234abcd"
    fresh = resolve_labeler(None, None, None)
    assert fresh.startswith("anon-") and fresh != resolve_labeler(None, None, None)


@pytest.mark.parametrize("bad", ["a#next", "x" * 65, "<b>", "anon-cafe"])
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
