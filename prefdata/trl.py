"""TRL's image preference layout: ``chosen``/``rejected`` image pairs with the
instruction as ``prompt``, written from our dataset.

Read back by :mod:`prefdata.parquet_read` (the ``chosen`` image is taken as shown
first and winning).
"""

from __future__ import annotations

from pathlib import Path

from prefdata.ours import TRL_FEATURES, PreferenceDataset
from prefdata.parquet_shards import PAIR_GROUP_BYTES, ShardWriter
from prefdata.tables import winner_first


def export_trl(ds: PreferenceDataset, folder: str | Path) -> Path:
    """TRL-style ``chosen``/``rejected`` image pairs per split (``train-*.parquet``,
    ``test-*.parquet``), the instruction as ``prompt``, ties left out; streamed."""
    folder = Path(folder)
    for split in ("train", "test"):
        with ShardWriter(folder, split, TRL_FEATURES, group_bytes=PAIR_GROUP_BYTES) as out:
            for w, lo in winner_first(ds.tables.pairs[split]):
                chosen, rejected = ds.image(w), ds.image(lo)
                row = {"chosen": chosen, "rejected": rejected, "prompt": ds.tables.instruction}
                out.add(row, len(chosen["bytes"]) + len(rejected["bytes"]))
    return folder
