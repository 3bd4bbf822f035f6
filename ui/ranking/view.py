"""HTML and tables the Ranking tab shows, built from plain values (no gradio here).

Everything a user or an image folder supplies is escaped, or for per-image context
sanitised to an allow-list of tags: no scripts, no event handlers, no styles. The
result is also made inert for Gradio's HTML component, which evaluates its template
as a JavaScript template string: ``$``, ``{``, ``}`` and backticks become entities.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import nh3

CONTEXT_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "u",
    "ul",
}
CONTEXT_ATTRIBUTES = {"a": {"href", "title"}}
_INERT = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"})
KEYS = {"left": "A · 1 / ←", "right": "B · 2 / →"}


@dataclass(frozen=True)
class ShownImage:
    """One side of a matchup as the page shows it."""

    uid: str
    name: str
    url: str | None  # display copy; None when the original cannot be read
    error: str | None = None
    context: str | None = None  # raw, sanitised when rendered


@dataclass(frozen=True)
class PairView:
    """What a labeler sees: the current pair, and the next one's URLs to preload."""

    project: str
    instruction: str
    pair_id: str | None
    left: ShownImage | None = None
    right: ShownImage | None = None
    prefetch: list[str] = field(default_factory=list)
    message: str = ""
    done: bool = False

    def as_dict(self) -> dict:
        """The API shape of a pair (JSON)."""

        def side(s: ShownImage | None) -> dict | None:
            if s is None:
                return None
            return {
                "uid": s.uid,
                "name": s.name,
                "url": s.url,
                "error": s.error,
                "context": sanitize_context(s.context) if s.context else None,
            }

        return {
            "project": self.project,
            "instruction": self.instruction,
            "pair_id": self.pair_id,
            "left": side(self.left),
            "right": side(self.right),
            "prefetch": list(self.prefetch),
            "message": self.message,
            "done": self.done,
        }


def inert(text: str) -> str:
    """Make text safe inside Gradio's HTML template (no ``${...}`` evaluation)."""
    return text.translate(_INERT)


def escape(text: object) -> str:
    return inert(html.escape(str(text), quote=True))


def sanitize_context(raw: str) -> str:
    """Per-image context as safe HTML: allow-listed tags only, scripts and handlers removed.

    >>> sanitize_context("<b>ok</b><script>alert(1)</script>${x}")
    '<b>ok</b>&#36;&#123;x&#125;'
    """
    cleaned = nh3.clean(
        raw,
        tags=CONTEXT_TAGS,
        attributes=CONTEXT_ATTRIBUTES,
        url_schemes={"http", "https"},
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer nofollow",
    )
    return inert(cleaned)


def pair_html(view: PairView | None, sound: bool = False) -> str:
    """The comparison view; ``data-pair-id`` lets the key script tell pairs apart."""
    if view is None:
        return '<div class="ps-pair ps-empty" data-pair-id="">Choose a project to start.</div>'
    message = f'<div class="ps-message" role="status">{escape(view.message)}</div>'
    head = f'<div class="ps-instruction">{escape(view.instruction)}</div>'
    if view.pair_id is None or view.left is None or view.right is None:
        text = "Nothing left to compare in this project." if view.done else "No pair to show."
        return (
            f'<div class="ps-pair ps-empty" data-pair-id="" data-sound="{int(sound)}">'
            f"{head}{message}<p>{escape(text)}</p></div>"
        )
    sides = "".join(_side_html(s, side) for s, side in ((view.left, "left"), (view.right, "right")))
    preload = "".join(f'<img src="{escape(u)}" alt="" loading="eager">' for u in view.prefetch)
    return (
        f'<div class="ps-pair" data-pair-id="{escape(view.pair_id)}" data-sound="{int(sound)}">'
        f'{head}{message}<div class="ps-sides">{sides}</div>'
        f'<div class="ps-prefetch" aria-hidden="true">{preload}</div></div>'
    )


def _side_html(img: ShownImage, side: str) -> str:
    if img.url:
        body = (
            f'<img class="ps-img" src="{escape(img.url)}" alt="{escape(img.name)}" '
            f'loading="eager" decoding="sync">'
        )
    else:
        body = (
            f'<div class="ps-error" role="alert"><b>Cannot show {escape(img.name)}</b><br>'
            f"{escape(img.error or 'unreadable image')}<br>"
            "Skip this pair, or exclude the image in Owner tools.</div>"
        )
    context = ""
    if img.context:
        context = (
            f'<details class="ps-context"><summary>Context</summary>'
            f"<div>{sanitize_context(img.context)}</div></details>"
        )
    return (
        f'<figure class="ps-side" data-side="{side}" data-uid="{escape(img.uid)}">{body}'
        f'<figcaption><span class="ps-key">{KEYS[side]}</span> '
        f'<span class="ps-name">{escape(img.name)}</span></figcaption>'
        f"{context}</figure>"
    )


CONFIDENCE_HELP = (
    "Ranking confidence: the average chance, given the votes so far, that each image "
    "really is better than the next one down the ranking. 50% is a coin flip (with no "
    "votes every image is tied); it nears 100% as more votes stop changing the order."
)


def progress_markdown(progress, known_tau: float | None = None) -> str:
    """Votes vs budget, confidence, and for the demo tau vs the known order; then a
    small line that says what the confidence means (it is shown right here).

    >>> from ranker.results import Progress
    >>> print(progress_markdown(Progress(0, None, 9, 9, 0.0, 0.5, False)).splitlines()[0])
    **0 votes** · 9 images · 0.0 votes per image · ranking confidence 50%
    """
    budget = f" / {progress.budget}" if progress.budget else ""
    parts = [
        f"**{progress.votes}{budget} votes**",
        f"{progress.active_images} images",
        f"{progress.votes_per_image:.1f} votes per image",
        f"ranking confidence {progress.confidence:.0%}",
    ]
    if known_tau is not None:
        parts.append(f"leaderboard vs the known order: Kendall tau {known_tau:.2f}")
    if progress.done:
        parts.append("**budget reached**")
    return " · ".join(parts) + f'\n\n<small class="ps-help">{CONFIDENCE_HELP}</small>'


LEADERBOARD_HEADERS = [
    "rank",
    "image",
    "name",
    "mu",
    "sigma",
    "conservative",
    "wins",
    "losses",
    "ties",
    "comparisons",
    "excluded",
    "reason",
    "ranked by",
]
LEADERBOARD_TYPES = [
    "number",
    "html",
    "str",
    "number",
    "number",
    "number",
    "number",
    "number",
    "number",
    "number",
    "bool",
    "str",
    "str",
]


def select_rows(rows: list[dict], view: str = "all", k: int = 10) -> list[dict]:
    """The whole board, or its ``top``, ``middle`` or ``bottom`` ``k`` rows."""
    if view == "top":
        return rows[:k]
    if view == "bottom":
        return rows[-k:]
    if view == "middle":
        start = max(0, (len(rows) - k) // 2)
        return rows[start : start + k]
    return rows


def leaderboard_rows(
    rows: list[dict], names: dict[str, str], thumbs: dict[str, str | None]
) -> list[list]:
    """Table rows, the thumbnail as an <img> of its display copy."""
    out = []
    for r in rows:
        url = thumbs.get(r["uid"])
        thumb = f'<img src="{escape(url)}" alt="" class="ps-thumb">' if url else "—"
        out.append(
            [
                r["rank"],
                thumb,
                names.get(r["uid"], r["uid"]),
                round(r["mu"], 3),
                round(r["sigma"], 3),
                round(r["conservative"], 3),
                r["wins"],
                r["losses"],
                r["ties"],
                r["comparisons"],
                bool(r["excluded"]),
                r["exclusion_reason"],
                # votes / model (a model is attached) / none: nothing places it yet
                r.get("ranked_by") or ("votes" if r["comparisons"] else "none"),
            ]
        )
    return out
