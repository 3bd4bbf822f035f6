"""JoyQuality: the SigLIP 2 so400m vision tower plus a linear head on its pooled output.

The Hub checkpoint loads as ``SiglipForImageClassification``, but that class's stock
forward mean-pools the patch tokens; JoyQuality was trained on ``pooler_output`` (the
attention-pooling "MAP" head), so the stock forward gives wrong scores without any
error. :class:`JoyQuality` keeps the same parameter names (so checkpoints stay
interchangeable with ``SiglipForImageClassification``) and has the correct forward.

Precision: on a GPU the backbone runs in bf16 with SDPA attention; the head always
stays fp32 and runs outside autocast, so scores are fp32 and millions of images do not
tie on bf16's coarse grid.

Example::

    model = load_model()                   # DEFAULT_MODEL_ID, cached or downloaded
    scores = model(pixel_values)           # FloatTensor [B]
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import SiglipConfig, SiglipVisionConfig, SiglipVisionModel

from common.contracts import DEFAULT_MODEL_ID
from model.checkpoint import (
    CALIBRATION_NAME,
    WEIGHTS_NAME,
    ModelUnavailableError,
    NotSiglipCheckpointError,
    read_config_dict,
    read_state_dict,
    resolve,
)

if TYPE_CHECKING:
    from model.calibrate import Calibration

__all__ = [
    "JoyQuality",
    "ModelUnavailableError",
    "NotSiglipCheckpointError",
    "build_tiny_model",
    "load_model",
    "so400m_config",
    "tiny_config",
]

log = logging.getLogger(__name__)

# The text tower is never built; SigLIP 2's vocabulary size keeps the default token ids
# valid, so transformers' config validation stays quiet (also after a save/load round trip).
_TEXT = {"vocab_size": 256000}


def tiny_config(image_size: int = 32) -> SiglipConfig:
    """A few-hundred-parameter SigLIP for tests (docs/joyquality.md); image_size % 16 == 0."""
    if image_size <= 0 or image_size % 16:
        raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
    vision = dict(
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=16,
    )
    return SiglipConfig(vision_config=vision, text_config=dict(_TEXT), num_labels=1)


def so400m_config(image_size: int = 512) -> SiglipConfig:
    """The JoyQuality architecture: SigLIP 2 so400m/16 vision tower (fixed resolution)."""
    vision = dict(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=image_size,
        patch_size=16,
    )
    return SiglipConfig(vision_config=vision, text_config=dict(_TEXT), num_labels=1)


PREPROCESSOR_NAME = "preprocessor_config.json"


def preprocessor_config(image_size: int) -> dict:
    """transformers' ``SiglipImageProcessor`` settings that match :mod:`model.preprocess`:
    RGB, squash to ``image_size`` square with PIL BICUBIC (resample 3, no crop), x/255,
    mean 0.5 / std 0.5. Its PIL backend (``backend="pil"``) gives identical pixels."""
    return {
        "image_processor_type": "SiglipImageProcessor",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": {"height": image_size, "width": image_size},
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }


def _default_backbone_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


class JoyQuality(nn.Module):
    """SigLIP vision tower + ``classifier`` (``nn.Linear(hidden, 1)``, fp32) on ``pooler_output``.

    The state dict keys are exactly ``SiglipForImageClassification``'s
    (``vision_model.*``, ``classifier.*``).
    """

    def __init__(self, config: SiglipConfig, calibration: Calibration | None = None) -> None:
        super().__init__()
        if not config.vision_config.vision_use_head:
            raise NotSiglipCheckpointError(
                "config has vision_use_head=False: JoyQuality needs the attention-pooling head"
            )
        config.num_labels = 1
        self.config = config
        self.vision_model = SiglipVisionModel._from_config(
            config.vision_config, attn_implementation="sdpa"
        )
        self.classifier = nn.Linear(config.vision_config.hidden_size, 1)
        self.calibration = calibration

    @property
    def image_size(self) -> int:
        size = self.config.vision_config.image_size
        return int(size[0] if isinstance(size, list | tuple) else size)

    @property
    def device(self) -> torch.device:
        return self.classifier.weight.device

    @property
    def backbone_dtype(self) -> torch.dtype:
        return self.vision_model.embeddings.patch_embedding.weight.dtype

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The backbone's attention-pooled embedding ``[B, hidden]`` in fp32."""
        if pixel_values.ndim != 4 or pixel_values.shape[1:] != (
            3,
            self.image_size,
            self.image_size,
        ):
            raise ValueError(
                f"expected pixel_values [B, 3, {self.image_size}, {self.image_size}], "
                f"got {tuple(pixel_values.shape)}"
            )
        out = self.vision_model(pixel_values.to(self.backbone_dtype))
        return out.pooler_output.float()

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        """fp32 linear head, outside any autocast, so scores keep full precision."""
        with torch.autocast(device_type=pooled.device.type, enabled=False):
            return self.classifier(pooled.float()).squeeze(-1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Scores ``[B]`` (fp32): ``classifier(vision_model(x).pooler_output).squeeze(-1)``.

        A 2-D input ``[B, hidden]`` is taken as already pooled embeddings (see
        :mod:`model.embeddings`) and goes through the head only: head-only training and
        its evaluation run on cached embeddings with the same model object.
        """
        if pixel_values.ndim == 2:
            return self.head(pixel_values)
        return self.head(self.pooled(pixel_values))

    def enable_gradient_checkpointing(self) -> None:
        """Recompute encoder activations in backward (full fine-tuning on small GPUs)."""
        enable = getattr(self.vision_model, "activation_checkpointing_enable", None)
        if enable is not None:  # transformers >= 5.x; the old name is deprecated there
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.vision_model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )

    def to_device(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> JoyQuality:
        """Move to ``device`` with the backbone in ``dtype`` (bf16 on GPU by default), head fp32."""
        dev = torch.device(device) if device is not None else self.device
        self.to(dev)
        self.vision_model.to(dtype or _default_backbone_dtype(dev))
        self.classifier.float()
        return self

    def save_pretrained(
        self,
        path: str | Path,
        calibration: Calibration | None = None,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write config.json + model.safetensors (``SiglipForImageClassification`` layout)
        and preprocessor_config.json (our preprocessing, for ``AutoImageProcessor``).

        ``calibration`` (or the model's own) is saved as calibration.json so later runs
        bucket identically. ``state_dict`` replaces the model's own (the full state
        gathered by ``accelerator.get_state_dict`` under a sharded strategy). Returns the folder.
        """
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.architectures = ["SiglipForImageClassification"]
        self.config.save_pretrained(folder)
        state = self.state_dict() if state_dict is None else state_dict
        tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(tensors, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        processor = preprocessor_config(self.image_size)
        (folder / PREPROCESSOR_NAME).write_text(json.dumps(processor, indent=2) + "\n")
        calibration = calibration or self.calibration
        if calibration is not None:
            calibration.save(folder / CALIBRATION_NAME)
        return folder


def _config_from_dict(data: dict | None, name: str) -> SiglipConfig:
    if data is None:
        log.info("%s has no config.json beside it: assuming the so400m-512 architecture", name)
        return so400m_config()
    model_type = data.get("model_type")
    if model_type == "siglip":
        return SiglipConfig.from_dict(data)
    if model_type == "siglip_vision_model":
        return SiglipConfig(
            vision_config=SiglipVisionConfig.from_dict(data).to_dict(), text_config=dict(_TEXT)
        )
    raise NotSiglipCheckpointError(
        f"{name}: config model_type is {model_type!r}, expected 'siglip' "
        "(JoyQuality is the fixed-resolution SigLIP 2 so400m; NaFlex 'siglip2' is not supported)"
    )


def _fresh_position_ids(model: JoyQuality) -> None:
    emb = model.vision_model.embeddings
    emb.register_buffer(
        "position_ids", torch.arange(emb.num_positions).expand((1, -1)), persistent=False
    )


def from_state_dict(
    config: SiglipConfig,
    state_dict: dict[str, torch.Tensor],
    *,
    name: str = "checkpoint",
    allow_new_head: bool = False,
) -> JoyQuality:
    """Build a model straight from tensors (no random init: built on the meta device)."""
    state_dict = dict(state_dict)
    if allow_new_head and "classifier.weight" not in state_dict:
        hidden = config.vision_config.hidden_size
        gen = torch.Generator().manual_seed(0)
        state_dict["classifier.weight"] = torch.randn(1, hidden, generator=gen) * hidden**-0.5
        state_dict["classifier.bias"] = torch.zeros(1)
    with torch.device("meta"):
        model = JoyQuality(config)
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state_dict), set(state_dict) - expected
    if missing or unexpected:
        hint = " (a SigLIP without a quality head: pass allow_new_head=True to start one)"
        raise NotSiglipCheckpointError(
            f"{name}: weights do not match the SigLIP config: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
            + (hint if missing == {"classifier.weight", "classifier.bias"} else "")
        )
    for key, param in model.state_dict().items():
        if state_dict[key].shape != param.shape:
            raise NotSiglipCheckpointError(
                f"{name}: {key} has shape {tuple(state_dict[key].shape)}, "
                f"config expects {tuple(param.shape)}"
            )
    model.load_state_dict(state_dict, assign=True)
    _fresh_position_ids(model)
    return model


def load_model(
    source: str | Path = DEFAULT_MODEL_ID,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    local_files_only: bool | None = None,
    allow_new_head: bool = False,
) -> JoyQuality:
    """Load JoyQuality (or a fine-tune) from a Hub id, a folder or one ``.safetensors`` file.

    Both key layouts load to identical scores. A lone safetensors file uses the
    config.json beside it, else the default so400m-512 architecture. The model is put
    in eval mode on ``device`` (default: CUDA when available) with the backbone in
    ``dtype`` (default bf16 on CUDA, fp32 elsewhere) and the head in fp32. A saved
    calibration.json is attached as ``model.calibration``.

    Raises ``ModelUnavailableError`` (not cached offline, not found) or
    ``NotSiglipCheckpointError`` (files that are not a SigLIP image model).
    """
    files = resolve(source, local_files_only)
    config = _config_from_dict(read_config_dict(files), files.name)
    model = from_state_dict(
        config, read_state_dict(files), name=files.name, allow_new_head=allow_new_head
    )
    if files.calibration is not None:
        from model.calibrate import Calibration

        model.calibration = Calibration.load(files.calibration)
    dev = torch.device(device) if device is not None else _auto_device()
    return model.to_device(dev, dtype).eval()


def _auto_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def build_tiny_model(seed: int = 0, image_size: int = 32) -> JoyQuality:
    """A tiny random JoyQuality (fp32, CPU, eval mode) for tests; same seed, same weights."""
    torch.manual_seed(seed)
    return JoyQuality(tiny_config(image_size)).eval()


def build_random_model(
    config: SiglipConfig, device: str | torch.device = "cpu", seed: int = 0
) -> JoyQuality:
    """A randomly initialised model of any architecture (benchmarks: speed needs no weights)."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    with dev:
        model = JoyQuality(config)
    return model.to_device(dev).eval()


def config_summary(model: JoyQuality) -> str:
    """One line for logs and the UI: architecture, size, dtype, device."""
    v = model.config.vision_config
    params = sum(p.numel() for p in model.parameters())
    return json.dumps(
        {
            "layers": v.num_hidden_layers,
            "width": v.hidden_size,
            "image_size": model.image_size,
            "params": params,
            "dtype": str(model.backbone_dtype).removeprefix("torch."),
            "device": str(model.device),
        }
    )
