"""Pick-a-Pic's layout: pair rows with both images embedded (``image_0``/``image_1``,
``label_0``/``label_1``), written from our dataset.

Read back by :mod:`prefdata.parquet_read` (every pair layout is told apart by its
columns there, so one reader serves ours, Pick-a-Pic's and TRL's).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from common.contracts import PROJECT_FILE
from prefdata.ours import EMBEDDED_PAIRS_FEATURES, PreferenceDataset, project_metadata
from prefdata.parquet_shards import PAIR_GROUP_BYTES, ShardWriter
from prefdata.tables import CONFIG_DIRS, config_splits


def export_embedded(ds: PreferenceDataset, folder: str | Path) -> Path:
    """Pick-a-Pic-style pairs: both images embedded in every row (``data/{split}-*``).

    Convenient for tools that want one self-contained row per vote; its size grows
    with votes x image size, so it is opt-in. Streamed: rows are written in groups of
    about 64 MB, each pair's images read from their files as the row is written.
    """
    folder = Path(folder)
    shutil.rmtree(folder / CONFIG_DIRS["default"], ignore_errors=True)
    for split in config_splits(ds.tables)["default"]:
        with ShardWriter(
            folder / CONFIG_DIRS["default"],
            split,
            EMBEDDED_PAIRS_FEATURES,
            group_bytes=PAIR_GROUP_BYTES,
        ) as out:
            for row in ds.tables.pairs[split]:
                i0, i1 = ds.image(row["image_0_uid"]), ds.image(row["image_1_uid"])
                out.add({**row, "image_0": i0, "image_1": i1}, len(i0["bytes"]) + len(i1["bytes"]))
    (folder / "README.md").write_text(ds.card(embedded=True), encoding="utf-8")
    (folder / PROJECT_FILE).write_text(json.dumps(project_metadata(ds.tables), indent=1))
    return folder
