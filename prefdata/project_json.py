"""Our own project exchange files: the JSON (settings, images, every vote in order) and
the leaderboard CSV.

An exported JSON imported elsewhere replays to identical ratings. The CSV shows image
paths as :func:`prefdata.imageranker_csv.shown_paths` does (relative to the images'
common folder).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from common.contracts import (
    LEADERBOARD_COLUMNS,
)
from prefdata.imageranker_csv import shown_paths
from ranker.errors import ImportFormatError, StudioError
from ranker.schema import vote_record
from ranker.service import ProjectSession, Studio
from ranker.store import vote_from_record

FORMAT_VERSION = 1


def export_csv(project: ProjectSession, order: str | None = None) -> str:
    """The leaderboard as CSV with mu, sigma, conservative score and counts, ranked by
    ``order`` (default: the order every output shares, ``ranker.results.default_order``)."""
    out = io.StringIO()
    rows = project.leaderboard(order)
    # with a model attached each row also says whether votes or the model place it
    extra = ["ranked_by"] if rows and "ranked_by" in rows[0] else []
    writer = csv.DictWriter(out, fieldnames=[*LEADERBOARD_COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    shown = shown_paths(project)
    for row in rows:
        writer.writerow({**row, "path": shown.get(row["path"], Path(row["path"]).name)})
    return out.getvalue()


def export_json(project: ProjectSession, order: str | None = None) -> str:
    """Everything needed to rebuild the project: settings, images, votes, leaderboard."""
    images = [
        {
            "uid": img.uid,
            "path": img.path,
            "name": img.name,
            "width": img.width,
            "height": img.height,
            "format": img.format,
            "bytes": img.bytes,
            "context": img.context,
            "excluded": img.excluded,
            "exclusion_reason": img.exclusion_reason,
        }
        for img in project.images
    ]
    votes = [vote_record(v) for v in project.votes()]
    doc = {
        "format": "preference-studio",
        "version": FORMAT_VERSION,
        "project": project.name,
        "instruction": project.row.instruction,
        "settings": project.row.settings,
        "images": images,
        "votes": votes,
        "leaderboard": project.leaderboard(order),
    }
    return json.dumps(doc, indent=1)


def import_json(studio: Studio, text: str, name: str | None = None) -> ProjectSession:
    """Create a project from our JSON export: same images, same votes in the same order.

    Image files are looked up at their recorded paths; files that no longer exist
    there are reported and the import stops before anything is written.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != "preference-studio":
        raise ImportFormatError("not a Preference Studio JSON export (missing format marker)")
    for key in ("images", "votes", "project"):
        if key not in doc:
            raise ImportFormatError(f"the JSON export has no {key!r} field")
    missing = [i["path"] for i in doc["images"] if not Path(i["path"]).is_file()]
    if missing:
        raise StudioError(
            f"{len(missing)} image files of the export are not found, e.g. {missing[0]}; "
            "move them back or add the folder to a project and import comparisons instead"
        )
    project = studio.create_project(
        name or doc["project"], doc.get("instruction"), **(doc.get("settings") or {})
    )
    report = project.add_files([i["path"] for i in doc["images"]])
    if report.rejected:
        raise StudioError("some images of the export no longer decode:\n" + report.summary())
    for img in doc["images"]:
        if img.get("excluded"):
            project.set_excluded(img["uid"], True, img.get("exclusion_reason"))
    project.record_votes([vote_from_record(v, "import") for v in doc["votes"]])
    return project
