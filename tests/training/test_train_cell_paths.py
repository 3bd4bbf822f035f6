"""Image paths inside training data (JSON and Parquet cells) pass the app's path gate.

The app's training desk passes its readable folders (``data_roots``); a cell naming a
file outside them (or outside the data's own folder) is refused by name. The command
line sets no roots and reads any path, as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefdata.ours import build_preference_dataset, save_parquet
from tests.prefdata.fixtures import voted_project
from training.config import TrainConfig
from training.data import DataError
from training.sources import load_data, read_dataset
from ui.training.desk import TrainingDesk


def _desk(tmp_path: Path, allowed: Path) -> TrainingDesk:
    return TrainingDesk(tmp_path / "data" / "runs", tmp_path / "data" / "studio.db", [allowed])


def test_json_cells_outside_the_roots_are_refused_in_the_app(tmp_path, quality_json):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    doc = json.loads(quality_json.read_text())
    for split in ("train", "test"):  # the same pairs, as absolute paths outside `allowed`
        for row in doc[split]:
            row[0], row[1] = str(quality_json.parent / row[0]), str(quality_json.parent / row[1])
    data = allowed / "pairs.json"
    data.write_text(json.dumps(doc))
    config = _desk(tmp_path, allowed).build_config({"source": "json", "data": str(data)})
    assert config.data_roots  # the desk always gates
    with pytest.raises(DataError, match=r"train\[0\].*outside the folders"):
        load_data(config)
    # the command line sets no roots: the same file reads as written
    loaded = load_data(TrainConfig(data=str(data), data_kind="json"))
    assert len(loaded.train) == len(doc["train"])


def test_json_cells_inside_the_roots_are_read(tmp_path, quality_json):
    config = _desk(tmp_path, quality_json.parent).build_config(
        {"source": "json", "data": str(quality_json)}
    )
    assert len(load_data(config).train) > 0


def _with_path_cells(folder: Path, paths: dict[str, str]) -> None:
    """Rewrite the images table so each image cell names a file instead of holding it."""
    for file in sorted((folder / "images").glob("*.parquet")):
        table = pq.read_table(file)
        cells = [{"bytes": None, "path": paths[uid]} for uid in table["uid"].to_pylist()]
        column = pa.array(cells, type=table.schema.field("image").type)
        table = table.set_column(table.schema.get_field_index("image"), "image", column)
        pq.write_table(table, file)


def test_parquet_cells_outside_the_roots_are_refused_in_the_app(tmp_path):
    _, project = voted_project(tmp_path, n_images=12, n_votes=80)
    allowed = tmp_path / "allowed"
    folder = save_parquet(build_preference_dataset(project, 0.4, seed=1), allowed / "ds")
    originals = {img.uid: img.path for img in project.images}  # outside `allowed`
    _with_path_cells(folder, originals)

    free = read_dataset(folder)  # the command line: no gate
    assert free.sources[0].read() == Path(originals[free.keys[0]]).read_bytes()

    config = _desk(tmp_path, allowed).build_config({"source": "dataset", "data": str(folder)})
    gated = load_data(config)  # pairs and uids load; each image is checked when read
    with pytest.raises(DataError, match="cannot be read.*outside the folders"):
        gated.sources[0].read()


def test_parquet_cells_inside_the_dataset_folder_are_read(tmp_path):
    _, project = voted_project(tmp_path, n_images=12, n_votes=80)
    allowed = tmp_path / "allowed"
    folder = save_parquet(build_preference_dataset(project, 0.4, seed=1), allowed / "ds")
    (folder / "files").mkdir()
    local = {}
    for img in project.images:
        target = folder / "files" / Path(img.path).name
        target.write_bytes(Path(img.path).read_bytes())
        local[img.uid] = f"../files/{target.name}"  # relative to the images/ Parquet file
    _with_path_cells(folder, local)
    gated = read_dataset(folder, roots=[str(tmp_path / "elsewhere")])  # own folder allowed
    assert gated.sources[0].read()[:4] == b"\x89PNG"
