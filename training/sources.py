"""Where a run's data and base model come from: the adapters around :mod:`training.data`.

``data_kind`` picks the reader: a JoyQuality JSON file, a published dataset (a local
folder of Parquet files or a Hub dataset id), or a ranking project, which
``prefdata.hub`` writes as that same layout (streamed, images once) before it is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common.paths import InsideRoots, ResolvePath, relative_to_file
from training.config import TrainConfig
from training.data import DataError, PreferenceData, read_json_pairs
from training.published import published_files, read_published

PROJECT_SNAPSHOT = "dataset"


def resolve_kind(config: TrainConfig) -> str:
    if config.data_kind != "auto":
        return config.data_kind
    return "json" if config.data.lower().endswith(".json") else "dataset"


def load_data(config: TrainConfig, studio: Any = None) -> PreferenceData:
    """Read and check the run's data (raises :class:`DataError` before any training)."""
    kind = resolve_kind(config)
    roots = data_roots(config)
    if kind == "json":
        data = Path(config.data)
        return read_json_pairs(data, resolve_path=cell_paths(roots, data.parent))
    if kind == "dataset":
        return read_dataset(config.data, rank_by=config.rank_by, roots=roots)
    snapshot = Path(config.output_dir) / PROJECT_SNAPSHOT
    if not (snapshot / "data").is_dir():
        snapshot_project(
            studio or _open_studio(config), config.data, snapshot,
            test_fraction=config.test_fraction, seed=config.seed,
        )  # fmt: skip
    data = read_dataset(snapshot, rank_by=config.rank_by, roots=roots)
    data.description = f"project {config.data} (snapshot in {snapshot})"
    return data


def data_roots(config: TrainConfig) -> list[str] | None:
    """The folders image paths inside the data may name (None: any, as on the CLI)."""
    roots = [p for p in config.data_roots.split(os.pathsep) if p.strip()]
    return roots or None


def cell_paths(roots: list[str] | None, own_folder: Path) -> ResolvePath:
    """How paths inside data cells resolve: freely without roots, else gated to the roots
    and the data's own folder (a Hub download or a project snapshot lives outside them)."""
    if roots is None:
        return relative_to_file
    return InsideRoots(tuple(dict.fromkeys([*roots, str(Path(own_folder).resolve())])))


def read_dataset(
    source: str | Path, *, rank_by: str = "mu", roots: list[str] | None = None
) -> PreferenceData:
    """A dataset published by the Dataset tab, from a local folder or the Hub.

    Read straight from its Parquet files (:mod:`training.published`): images stay in
    their cells until a worker reads them. ``roots``: see :func:`cell_paths`.
    """
    folder = Path(source).expanduser()
    if not folder.is_dir():
        folder = _download_dataset(str(source))
    pairs_files, _ = published_files(folder)
    if not any(pairs_files.values()):
        raise DataError(f"{source}: no pairs Parquet files found (expected data/train-*.parquet)")
    if not pairs_files["train"]:
        raise DataError(f"{source}: the training split of the pairs table is empty")
    if not pairs_files["test"]:
        raise DataError(
            f"{source}: the test split is empty: it needs pairs whose two images are both "
            "test images; collect more votes or raise the test fraction"
        )
    return read_published(
        folder,
        rank_by=rank_by,
        description=f"dataset {source}",
        resolve_path=cell_paths(roots, folder),
    )


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


def _open_studio(config: TrainConfig):
    from ranker.service import Studio

    db = Path(
        config.studio_db or Path(os.environ.get("STUDIO_DATA_DIR", "studio_data")) / "studio.db"
    )
    if not db.is_file():
        raise DataError(f"no ranking database at {db}: set studio_db to the app's studio.db")
    return Studio(db)


def snapshot_project(
    studio: Any, name: str, folder: Path, *, test_fraction: float = 0.1, seed: int = 0
) -> Path:
    """Publish a ranking project's votes as a local dataset folder, split by image.

    The run trains on this snapshot, so a resumed run sees the same pairs even when
    votes arrived in the meantime.
    """
    try:
        from prefdata import hub
    except ImportError as exc:
        raise DataError(f"project source needs prefdata.hub ({exc})") from None
    from ranker.errors import StudioError

    try:
        dataset = hub.build_preference_dataset(
            studio.project(name), test_fraction=test_fraction, seed=seed
        )
    except StudioError as exc:
        raise DataError(f"project {name!r}: {exc}") from None
    return hub.save_parquet(dataset, folder)


def load_base_model(config: TrainConfig):
    """The base model in fp32 on the CPU (accelerate places it and casts under autocast).

    Any SigLIP checkpoint works: one without a quality head gets a fresh linear head.
    Raises ``ModelUnavailableError``/``NotSiglipCheckpointError`` with what to do.
    """
    import torch

    from model.joyquality import load_model

    return load_model(config.base_model, device="cpu", dtype=torch.float32, allow_new_head=True)
