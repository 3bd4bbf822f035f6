"""Where a run's data and base model come from: the adapters around :mod:`training.data`.

``data_kind`` picks the reader: a JoyQuality JSON file, a published dataset (a local
folder of Parquet files or a Hub dataset id), or a ranking project, which
``ranker.hub`` turns into the same pairs/images tables in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.data import DataError, PreferenceData, from_tables, read_json_pairs

PAIRS_SPLITS = ("train", "test")


def resolve_kind(config: TrainConfig) -> str:
    if config.data_kind != "auto":
        return config.data_kind
    return "json" if config.data.lower().endswith(".json") else "dataset"


def load_data(config: TrainConfig, studio: Any = None) -> PreferenceData:
    """Read and check the run's data (raises :class:`DataError` before any training)."""
    kind = resolve_kind(config)
    if kind == "json":
        return read_json_pairs(config.data)
    if kind == "dataset":
        return read_dataset(config.data, rank_by=config.rank_by)
    return read_project(
        studio, config.data, test_fraction=config.test_fraction, seed=config.seed,
        rank_by=config.rank_by,
    )  # fmt: skip


def _parquet_tables(folder: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Parquet files of the pairs splits and of the images table under ``folder``.

    A file belongs to the images table when a folder or file name starts with
    ``images``; otherwise it is a pairs file whose split is named in its file name.
    """
    pairs: dict[str, list[str]] = {s: [] for s in PAIRS_SPLITS}
    images: list[str] = []
    for path in sorted(folder.rglob("*.parquet")):
        parts = path.relative_to(folder).parts
        if any(p.startswith("images") for p in parts):
            images.append(str(path))
            continue
        for split in PAIRS_SPLITS:
            if path.name.startswith(split) or f"-{split}" in path.name or f"/{split}/" in str(path):
                pairs[split].append(str(path))
                break
    return pairs, images


def read_dataset(source: str | Path, *, rank_by: str = "mu") -> PreferenceData:
    """A dataset published by the Dataset tab, from a local folder or the Hub."""
    from datasets import load_dataset

    folder = Path(source).expanduser()
    if not folder.is_dir():
        folder = _download_dataset(str(source))
    pairs_files, image_files = _parquet_tables(folder)
    if not any(pairs_files.values()):
        raise DataError(
            f"{source}: no pairs Parquet files found (expected pairs train/test splits)"
        )
    empty = [s for s, f in pairs_files.items() if not f]
    if empty:
        raise DataError(f"{source}: no Parquet files for the {empty} split(s) of the pairs table")
    pairs = load_dataset("parquet", data_files=pairs_files)
    images = None
    if image_files:
        images = load_dataset("parquet", data_files={"images": image_files})["images"]
    return from_tables(pairs, images, rank_by=rank_by, description=f"dataset {source}")


def _download_dataset(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id, repo_type="dataset", allow_patterns=["*.parquet", "**/*.parquet"]
            )
        )
    except (HFValidationError, RepositoryNotFoundError) as exc:
        raise DataError(f"{repo_id}: neither a local folder nor a Hub dataset ({exc})") from None
    except OSError as exc:
        raise DataError(
            f"{repo_id}: not a local folder, and the Hub dataset could not be downloaded "
            f"({type(exc).__name__}: {exc})"
        ) from None


def read_project(
    studio: Any, name: str, *, test_fraction: float = 0.1, seed: int = 0, rank_by: str = "mu"
) -> PreferenceData:
    """A ranking project, split by image into train/test as the Dataset tab publishes it."""
    try:
        from ranker import hub
    except ImportError:
        raise DataError("project source needs ranker.hub (the dataset builder)") from None
    if studio is None:
        raise DataError("a project source needs the ranking service (studio)")
    tables = hub.build_tables(studio.project(name), test_fraction=test_fraction, seed=seed)
    return from_tables(tables.pairs, tables.images, rank_by=rank_by, description=f"project {name}")


def load_base_model(config: TrainConfig):
    """The base model in fp32 on the CPU (accelerate places it and casts under autocast).

    Any SigLIP checkpoint works: one without a quality head gets a fresh linear head.
    Raises ``ModelUnavailableError``/``NotSiglipCheckpointError`` with what to do.
    """
    import torch

    from model.joyquality import load_model

    return load_model(config.base_model, device="cpu", dtype=torch.float32, allow_new_head=True)
