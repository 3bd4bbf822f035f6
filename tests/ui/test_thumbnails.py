"""Display copies: made once, resized, originals untouched, unreadable files reported."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from ui.thumbnails import DisplayCache, DisplayError


def test_copy_is_made_once_and_original_untouched(tmp_path):
    original = tmp_path / "big.png"
    Image.new("RGBA", (3000, 1500), (10, 200, 30, 128)).save(original)
    before = (hashlib.sha256(original.read_bytes()).hexdigest(), original.stat().st_mtime_ns)
    cache = DisplayCache(tmp_path / "cache")
    path = cache.ensure("abc123", original)
    assert path.parent == cache.root and path.name == "abc123_1024.jpg"
    with Image.open(path) as img:
        assert img.size == (1024, 512) and img.mode == "RGB"
    mtime = path.stat().st_mtime_ns
    assert cache.ensure("abc123", original) == path and path.stat().st_mtime_ns == mtime
    thumb = cache.ensure("abc123", original, "thumb")
    with Image.open(thumb) as img:
        assert max(img.size) == 160
    after = (hashlib.sha256(original.read_bytes()).hexdigest(), original.stat().st_mtime_ns)
    assert after == before
    assert cache.url("abc123", original) == "studio-media/abc123_1024.jpg"  # no server path


def test_corrupt_or_missing_original_is_reported(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cache = DisplayCache(tmp_path / "cache")
    with pytest.raises(DisplayError, match="bad.jpg: corrupt or unreadable"):
        cache.ensure("bad1", bad)
    with pytest.raises(DisplayError, match="gone"):
        cache.ensure("gone1", tmp_path / "missing.png")
    assert not list(cache.root.iterdir())  # no half-written files left behind


@pytest.mark.parametrize("uid", ["../etc", "a/b", ""])
def test_uids_cannot_escape_the_cache(tmp_path, uid):
    with pytest.raises(ValueError):
        DisplayCache(tmp_path).path_for(uid, "display")
