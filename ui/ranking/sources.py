"""Where a new project's images come from: uploads and zips, a local folder, a Hub dataset.

Uploaded files are copied into ``ctx.uploads_dir`` (Gradio's temporary uploads are
cleaned up eventually); zips are unpacked there safely. Local folders are read in
place and only inside ``ctx.allowed_roots`` (Image Ranker's ``BASE_DIR``; none on a
public Space unless configured). Hub datasets are streamed, and their first
``max_images`` images written as files, with a plain message when offline.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

from common.paths import PathRefused, gate, slug
from ranker.errors import StudioError
from ranker.intake import IntakeReport
from ui.context import StudioContext

MAX_DATASET_IMAGES = 2000


def new_upload_dir(ctx: StudioContext, project: str) -> Path:
    """A fresh folder for one intake's files (unique: removable if the intake fails)."""
    path = ctx.uploads_dir / f"{slug(project)}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def allowed_folder(ctx: StudioContext, folder: str, owner: bool = True) -> Path:
    """Resolve a typed folder path through the path gate (:func:`common.paths.gate`)."""
    if not ctx.allowed_roots and owner:
        raise StudioError(
            "local folders are off on this server; upload files or a zip instead "
            "(the operator can allow folders with BASE_DIR)"
        )
    try:
        return gate(folder, ctx.allowed_roots, owner=owner, kind="dir")
    except PathRefused as exc:
        raise StudioError(str(exc)) from None


def add_uploads(session, files: list[str], dest: Path) -> IntakeReport:
    """Copy uploaded files (and unpack zips) into ``dest``, then add them."""
    total = IntakeReport()
    plain = []
    for raw in files:
        src = Path(raw)
        if src.suffix.lower() == ".zip":
            _merge(total, session.add_zip(src, dest / src.stem))
            continue
        target = _free_name(dest / src.name)
        shutil.copyfile(src, target)
        plain.append(target)
    if plain:
        _merge(total, session.add_files(plain))
    return total


def add_hub_dataset(
    session,
    dest: Path,
    dataset_id: str,
    split: str = "train",
    max_images: int = 500,
) -> IntakeReport:
    """Write the first ``max_images`` images of a Hub image dataset to files and add them."""
    dataset_id = (dataset_id or "").strip()
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", dataset_id):
        raise StudioError(f"{dataset_id!r} is not a dataset id like 'user/name'")
    max_images = max(1, min(int(max_images), MAX_DATASET_IMAGES))
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, split=split or "train", streaming=True)
        features = ds.features or {}
        column = next((k for k, f in features.items() if type(f).__name__ == "Image"), None)
        if column is None:
            raise StudioError(f"dataset {dataset_id!r} has no image column")
        dest = dest / ("hub-" + dataset_id.replace("/", "--"))
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, row in enumerate(ds):
            if i >= max_images:
                break
            img = row[column]
            path = dest / f"{i:06d}.png"
            img.save(path)
            paths.append(path)
    except StudioError:
        raise
    except Exception as exc:  # network, auth, missing dataset: all reach the user
        raise StudioError(
            f"could not load dataset {dataset_id!r} from the Hugging Face Hub "
            f"({type(exc).__name__}: {exc}). Check the id and that this server is online "
            "(HF_HUB_OFFLINE must be unset); private datasets need HF_TOKEN."
        ) from exc
    return session.add_files(paths)


def _merge(into: IntakeReport, part: IntakeReport) -> None:
    into.accepted += part.accepted
    into.rejected += part.rejected
    into.duplicates += part.duplicates


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for k in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise StudioError(f"too many files named {path.name}")
