"""Finding and reading JoyQuality checkpoints: Hub ids, folders and lone safetensors files.

Two key layouts exist. The Hugging Face one (``vision_model.*``, ``classifier.*``, as
``SiglipForImageClassification`` saves it) and the upstream training script's plain
state dict (``clip_model.*``, ``head.1.*``); renaming the prefixes converts the second
into the first exactly. A full SigLIP checkpoint (``SiglipModel``: vision and text
towers) also works as a base model: its text tower is dropped.

Nothing here builds a model; :mod:`model.joyquality` does that from what this returns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
CALIBRATION_NAME = "calibration.json"

# Upstream training-script prefixes -> Hugging Face prefixes.
UPSTREAM_PREFIXES = (("clip_model.", "vision_model."), ("head.1.", "classifier."))
# Keys of a full SiglipModel checkpoint that a scoring model does not use.
IGNORED_PREFIXES = ("text_model.", "logit_scale", "logit_bias")


class ModelUnavailableError(RuntimeError):
    """The model is not on disk and cannot be downloaded (offline or not found)."""


class NotSiglipCheckpointError(ValueError):
    """The files exist but are not a SigLIP (JoyQuality) image model."""


@dataclass
class CheckpointFiles:
    """Local files making up one checkpoint."""

    name: str
    weights: list[Path]
    config: Path | None
    calibration: Path | None


def _offline_default() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _how_to_get(name: str) -> str:
    return (
        f"Download it while online (`huggingface-cli download {name}` or "
        f"`hf download {name}`), point HF_HOME at a cache that holds it, "
        "or pass a local folder with config.json and model.safetensors."
    )


def _local_files(folder: Path, name: str) -> CheckpointFiles:
    index = folder / WEIGHTS_INDEX_NAME
    if (folder / WEIGHTS_NAME).is_file():
        weights = [folder / WEIGHTS_NAME]
    elif index.is_file():
        shard_names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        weights = [folder / s for s in shard_names]
    else:
        found = sorted(folder.glob("*.safetensors"))
        if len(found) != 1:
            raise NotSiglipCheckpointError(
                f"{name}: expected {WEIGHTS_NAME} (or one .safetensors file) in {folder}, "
                f"found {len(found)} safetensors files"
            )
        weights = found
    missing = [w for w in weights if not w.is_file()]
    if missing:
        raise ModelUnavailableError(f"{name}: weight files missing: {[str(m) for m in missing]}")
    config = folder / CONFIG_NAME
    calib = folder / CALIBRATION_NAME
    return CheckpointFiles(
        name, weights, config if config.is_file() else None, calib if calib.is_file() else None
    )


def resolve(source: str | Path, local_files_only: bool | None = None) -> CheckpointFiles:
    """Local files for a Hub id, a folder or a single ``.safetensors`` file.

    A Hub id is fetched into (or read from) the Hugging Face cache. ``local_files_only``
    None follows ``HF_HUB_OFFLINE``. Raises ``ModelUnavailableError`` with instructions
    when the model is neither on disk nor downloadable.
    """
    path = Path(source).expanduser()
    name = str(source)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise NotSiglipCheckpointError(f"{name}: expected a .safetensors file")
        config = path.parent / CONFIG_NAME
        calib = path.with_suffix(".calibration.json")
        if not calib.is_file():
            calib = path.parent / CALIBRATION_NAME
        return CheckpointFiles(
            name, [path], config if config.is_file() else None, calib if calib.is_file() else None
        )
    if path.is_dir():
        return _local_files(path, name)
    looks_local = (
        name.startswith((".", "/", "~")) or name.endswith(".safetensors") or os.sep + os.sep in name
    )
    if looks_local or name.count("/") > 1:
        raise ModelUnavailableError(f"model {name!r} not found: no such file or folder")
    return _hub_files(name, _offline_default() if local_files_only is None else local_files_only)


def _hub_files(repo_id: str, local_files_only: bool) -> CheckpointFiles:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=[CONFIG_NAME, "*.safetensors", WEIGHTS_INDEX_NAME, CALIBRATION_NAME],
            local_files_only=local_files_only,
        )
    except HFValidationError as exc:
        raise ModelUnavailableError(
            f"model {repo_id!r} is neither a local file/folder nor a valid Hub id ({exc})"
        ) from None
    except GatedRepoError:
        raise ModelUnavailableError(
            f"model {repo_id!r} is gated: accept its terms on the Hub and log in (`hf auth login`)."
        ) from None
    except RepositoryNotFoundError:
        raise ModelUnavailableError(
            f"model {repo_id!r} was not found on the Hub (check the id, or log in if it is private)."
        ) from None
    except (LocalEntryNotFoundError, OSError) as exc:
        mode = "offline mode is on" if local_files_only else "the Hub cannot be reached"
        raise ModelUnavailableError(
            f"model {repo_id!r} is not in the local Hugging Face cache and {mode}. "
            f"{_how_to_get(repo_id)} ({type(exc).__name__})"
        ) from None
    return _local_files(Path(folder), repo_id)


def read_config_dict(files: CheckpointFiles) -> dict | None:
    """The checkpoint's config.json as a dict, or None when there is none."""
    if files.config is None:
        return None
    try:
        return json.loads(files.config.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NotSiglipCheckpointError(f"{files.name}: unreadable config.json ({exc})") from None


def convert_keys(
    state_dict: dict[str, torch.Tensor], name: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Any supported layout to the ``SiglipForImageClassification`` keys (exact renames).

    Raises ``NotSiglipCheckpointError`` when no SigLIP vision weights are present.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(IGNORED_PREFIXES):
            continue
        for old, new in UPSTREAM_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    if not any(k.startswith("vision_model.embeddings.patch_embedding") for k in out):
        sample = ", ".join(sorted(state_dict)[:5]) or "no tensors"
        raise NotSiglipCheckpointError(
            f"{name}: not a SigLIP image checkpoint (no vision_model.embeddings.patch_embedding "
            f"weights; keys start with: {sample})"
        )
    return out


def read_state_dict(files: CheckpointFiles) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint, renamed to the Hugging Face layout, on CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for weights in files.weights:
        try:
            tensors.update(load_file(str(weights), device="cpu"))
        except (SafetensorError, OSError) as exc:
            raise NotSiglipCheckpointError(
                f"{weights}: not a readable safetensors file ({exc})"
            ) from None
    return convert_keys(tensors, files.name)
