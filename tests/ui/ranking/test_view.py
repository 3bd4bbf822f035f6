"""Rendering: context is sanitised and inert, names are escaped, board views slice right."""

from __future__ import annotations

import pytest

from ui.ranking.view import PairView, ShownImage, pair_html, sanitize_context, select_rows

HOSTILE = [
    ("<script>window.__pwned = 1</script>ok", "ok"),
    ('<img src=x onerror="window.__pwned=1">', ""),
    ("<b onclick='x()'>bold</b>", "<b>bold</b>"),
    ('<a href="javascript:alert(1)">link</a>', '<a rel="noopener noreferrer nofollow">link</a>'),
    ("${window.__pwned = 1}", "&#36;&#123;window.__pwned = 1&#125;"),
    (
        "{{constructor.constructor('x')()}}",
        "&#123;&#123;constructor.constructor('x')()&#125;&#125;",
    ),
    ("`${x}`", "&#96;&#36;&#123;x&#125;&#96;"),
    ("<style>body{display:none}</style>text", "text"),
]


@pytest.mark.parametrize(("raw", "expected"), HOSTILE)
def test_context_is_sanitised_and_inert(raw, expected):
    assert sanitize_context(raw) == expected


def test_allowed_tags_survive():
    assert sanitize_context("<b>Scene</b>: <i>lake</i><br><ul><li>a</li></ul>") == (
        "<b>Scene</b>: <i>lake</i><br><ul><li>a</li></ul>"
    )


def test_pair_html_escapes_names_and_keeps_pair_id():
    side = ShownImage("abc", "<img src=x onerror=alert(1)>${x}.png", "gradio_api/file=/c/a.jpg")
    bad = ShownImage("def", "b.png", None, error="b.png: corrupt or unreadable image (truncated)")
    html = pair_html(PairView("p", "Which {{is}} better?", "pid123", side, bad, ["u1"]))
    assert 'data-pair-id="pid123"' in html
    assert "<img src=x" not in html and "${" not in html and "{{" not in html
    assert "Cannot show b.png" in html and "corrupt or unreadable" in html
    assert 'src="u1"' in html  # the look-ahead pair is preloaded


def test_done_view_has_no_pair():
    html = pair_html(PairView("p", "Q?", None, done=True))
    assert 'data-pair-id=""' in html and "Nothing left to compare" in html


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("top", [1, 2, 3]),
        ("bottom", [23, 24, 25]),
        ("middle", [12, 13, 14]),
        ("all", list(range(1, 26))),
    ],
)
def test_board_views(view, expected):
    rows = [{"rank": i} for i in range(1, 26)]
    assert [r["rank"] for r in select_rows(rows, view, k=3)] == expected
