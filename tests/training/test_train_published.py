"""The training reader follows the published layout (images once) and the older one."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from prefdata.ours import build_preference_dataset, save_parquet
from prefdata.pickapic import export_embedded
from tests.prefdata.fixtures import voted_project
from training.batches import read_image
from training.data import DataError, ParquetCell
from training.sources import read_dataset


def _pairs(data) -> dict[str, list[tuple]]:
    return {
        split: [
            (data.keys[a], data.keys[b], float(y))
            for a, b, y in zip(pairs.a, pairs.b, pairs.label, strict=True)
        ]
        for split, pairs in (("train", data.train), ("test", data.test))
    }


def _bytes(data) -> dict[str, bytes]:
    return {key: source.read() for key, source in zip(data.keys, data.sources, strict=True)}


@pytest.fixture
def layouts(tmp_path):
    _, project = voted_project(tmp_path, n_images=16, n_votes=120)
    ds = build_preference_dataset(project, 0.3, seed=2)
    new = save_parquet(ds, tmp_path / "new")
    old = export_embedded(ds, tmp_path / "old")  # pairs embed both images, no images table
    return project, ds, new, old


def test_same_pairs_and_images_from_the_new_layout_as_from_the_old(layouts, tmp_path):
    project, ds, new, old = layouts
    from_new, from_old = read_dataset(new), read_dataset(old)
    assert _pairs(from_new) == _pairs(from_old)
    expected = {
        s: [(r["image_0_uid"], r["image_1_uid"], r["label_0"]) for r in ds.tables.pairs[s]]
        for s in ("train", "test")
    }
    assert _pairs(from_new) == expected
    files = {img.uid: open(img.path, "rb").read() for img in project.images}  # noqa: SIM115
    assert _bytes(from_new) == _bytes(from_old) == {k: files[k] for k in from_new.keys}
    # new: images from the images table; old: from the pair rows' cells
    assert {s.column for s in from_new.sources} == {"image"}
    assert {s.column for s in from_old.sources} == {"image_0", "image_1"}
    assert from_new.ranking_name == "TrueSkill mu of the test images"
    assert from_old.ranking_name.startswith("Bradley-Terry")
    # the older layout with its images table ranks by it, as before
    shutil.copytree(new / "images", old / "images")
    with_table = read_dataset(old)
    assert _pairs(with_table) == _pairs(from_new) and with_table.human == from_new.human
    assert read_image(from_new.sources[0], from_new.keys[0]).mode == "RGB"


def test_image_row_groups_stay_small(layouts):
    """A worker reading one image decodes one row group: about one image's bytes."""
    _, _, new, _ = layouts
    (shard,) = (new / "images").glob("*.parquet")
    meta = pq.ParquetFile(shard).metadata
    assert meta.num_row_groups >= 1
    sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
    assert max(sizes) < 2 * 1024**2


def test_pair_naming_an_image_nowhere_is_an_error(layouts):
    _, _, new, _ = layouts
    shutil.rmtree(new / "images")
    with pytest.raises(DataError, match="neither in the images table nor embedded"):
        read_dataset(new)


def test_a_path_cell_goes_through_the_resolver(tmp_path):
    import pyarrow as pa

    (tmp_path / "x.png").write_bytes(b"png-bytes")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"image": [{"bytes": None, "path": "x.png"}]}), path)
    assert ParquetCell(str(path), 0, 0, "image").read() == b"png-bytes"
    refused = ParquetCell(str(path), 0, 0, "image", resolve_path=_refuse)
    with pytest.raises(DataError, match=r"cannot be read \(x.png is outside"):
        refused.read()


def _refuse(cell, base):
    raise ValueError(f"{cell} is outside the allowed folders")
