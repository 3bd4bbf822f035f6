"""Which reader reads a source: a Hub dataset repo id, a local folder of Parquet files
(our export or any other), one Parquet file, a zip of either, or JoyQuality's JSON.

Our full export (``images`` + ``votes`` tables) is replayed from its vote log; other
Parquet folders are read as pair tables (:mod:`prefdata.parquet_read`); a JSON file is
JoyQuality's (:mod:`prefdata.joyquality_json`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common.contracts import PROJECT_FILE
from common.paths import ResolvePath
from prefdata.imported import ImageWriter, ImportedImage, ImportedVote, inside_dataset
from prefdata.joyquality_json import read_joyquality
from prefdata.parquet_read import pair_files, read_image_table, read_log_tables, read_pairs_parquet
from prefdata.tables import CONFIG_DIRS
from ranker.errors import ImportFormatError
from ranker.intake import extract_zip


# --- sources -------------------------------------------------------------------------------
@dataclass
class Loaded:
    """Everything read from a source, images already validated and written."""

    layout: str
    votes: list[ImportedVote]
    images: dict[str, ImportedImage]
    meta: dict
    rows: int
    bad_rows: list[str]
    name_hint: str = ""


def load_source(
    source: str | Path,
    images_dir: Path,
    *,
    token: str | None = None,
    split: str | None = None,
    resolve_path: ResolvePath = inside_dataset,
) -> Loaded:
    """Read any accepted source; a string that is not an existing path is a Hub repo id.

    ``resolve_path(cell, base)`` turns an image path found in a cell into the file to
    read (raise ``ValueError`` to refuse it; the row is reported and left out).
    """
    path = Path(source)
    writer = ImageWriter(images_dir, resolve_path)
    if not path.exists():
        from prefdata.hub import download_dataset

        with tempfile.TemporaryDirectory(prefix="pstudio-import-") as tmp:
            folder = download_dataset(str(source), tmp, token=token, split=split)
            loaded = _load_folder(folder, writer)
        loaded.name_hint = str(source).rsplit("/", 1)[-1]
        return loaded
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="pstudio-import-") as tmp:
            loaded = _load_folder(extract_zip(path, Path(tmp)), writer)
    elif path.suffix.lower() == ".json":
        votes, rows, bad = read_joyquality(path, writer)
        loaded = Loaded("JoyQuality JSON", votes, writer.images, {}, rows, bad)
    elif path.is_dir():
        loaded = _load_folder(path, writer)
    elif path.suffix.lower() == ".parquet":
        layout, votes, rows, bad, hints = read_pairs_parquet([path], writer, path.parent)
        loaded = Loaded(layout, votes, writer.images, hints, rows, bad)
    else:
        raise ImportFormatError(
            f"{path.name}: import takes a Parquet file or folder, a zip of one, a JoyQuality "
            "JSON file, or a Hub dataset repo id"
        )
    loaded.name_hint = loaded.name_hint or path.stem
    return loaded


def _load_folder(folder: Path, writer: ImageWriter) -> Loaded:
    meta_file = folder / PROJECT_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    has_log = all(any((folder / CONFIG_DIRS[c]).glob("*.parquet")) for c in ("images", "votes"))
    if has_log:
        votes, bad = read_log_tables(folder, writer)
        rows = len(votes) + len(bad)
        loaded = Loaded("Preference Studio dataset", votes, writer.images, meta, rows, bad)
    else:
        files = pair_files(folder)
        jsons = sorted(p for p in folder.rglob("*.json") if p.name != PROJECT_FILE)
        if not files and jsons:
            votes, rows, bad = read_joyquality(jsons[0], writer)
            loaded = Loaded("JoyQuality JSON", votes, writer.images, meta, rows, bad)
        elif not files:
            raise ImportFormatError(f"{folder.name} holds no Parquet or JoyQuality JSON files")
        else:
            image_bad = read_image_table(folder, writer)  # pairs by uid look images up here
            layout, votes, rows, bad, hints = read_pairs_parquet(files, writer, folder)
            loaded = Loaded(layout, votes, writer.images, {**hints, **meta}, rows, image_bad + bad)
    return loaded
