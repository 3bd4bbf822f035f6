"""JoyQuality's forward, checkpoint layouts, precision and offline errors (tiny models)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import SiglipForImageClassification, SiglipModel

from model.calibrate import Calibration
from model.joyquality import (
    JoyQuality,
    ModelUnavailableError,
    NotSiglipCheckpointError,
    build_tiny_model,
    load_model,
    so400m_config,
    tiny_config,
)


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_score_is_head_on_pooler_output_not_stock_forward(pixels):
    model = build_tiny_model(seed=3)
    with torch.no_grad():
        scores = model(pixels)
        pooled = model.vision_model(pixels).pooler_output
        by_hand = pooled @ model.classifier.weight[0] + model.classifier.bias[0]
        mean_pooled = model.vision_model(pixels).last_hidden_state.mean(dim=1)
        stock = model.classifier(mean_pooled).squeeze(-1)
    assert scores.shape == (3,) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, by_hand)
    assert not torch.allclose(scores, stock, atol=1e-3)


def test_save_load_roundtrip_and_hf_layout(tmp_path, pixels):
    model = build_tiny_model(seed=1)
    cal = Calibration(tau=0.5, b=0.1)
    model.save_pretrained(tmp_path, calibration=cal)
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json",
        "model.safetensors",
        "calibration.json",
        "preprocessor_config.json",
    }
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
        "SiglipForImageClassification"
    ]
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.calibration == cal and not loaded.training
    assert set(loaded.state_dict()) == set(model.state_dict())
    assert all(k.startswith(("vision_model.", "classifier.")) for k in loaded.state_dict())
    hf = SiglipForImageClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixels), model(pixels), rtol=0, atol=0)
        hf_score = hf.classifier(hf.vision_model(pixels).pooler_output).squeeze(-1)
    torch.testing.assert_close(hf_score, model(pixels).detach())


class UpstreamSo400m512(torch.nn.Module):
    """Upstream train.py's ``So400m512`` as written there (``clip_model`` is the SigLIP
    model's ``vision_model``, ``head`` a Dropout + Linear), built from a config instead of
    the Hub, so its state dict has upstream's own key names."""

    def __init__(self, config) -> None:
        super().__init__()
        self.clip_model = SiglipModel(config).vision_model
        self.head = torch.nn.Sequential(
            torch.nn.Dropout(0.0), torch.nn.Linear(config.vision_config.hidden_size, 1, bias=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedding = self.clip_model(x).pooler_output
        return self.head(embedding).squeeze(-1)


def test_upstream_layout_loads_to_identical_scores(tmp_path, pixels):
    torch.manual_seed(2)
    upstream = UpstreamSo400m512(tiny_config()).eval()
    keys = set(upstream.state_dict())
    assert "head.1.weight" in keys and any(k.startswith("clip_model.encoder.") for k in keys)
    (tmp_path / "up").mkdir()
    tensors = {k: v.contiguous() for k, v in upstream.state_dict().items()}
    save_file(tensors, str(tmp_path / "up" / "o8eg1n4c.safetensors"))
    build_tiny_model().save_pretrained(tmp_path / "hf")  # only for its config.json
    (tmp_path / "up" / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    ours = load_model(tmp_path / "up" / "o8eg1n4c.safetensors", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(ours(pixels), upstream(pixels), rtol=0, atol=0)


def test_full_siglip_checkpoint_needs_new_head_flag(tmp_path, pixels):
    model = build_tiny_model(seed=4)
    tensors = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    tensors["text_model.embeddings.token_embedding.weight"] = torch.zeros(4, 8)
    tensors["logit_scale"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    model.config.save_pretrained(tmp_path)
    with pytest.raises(NotSiglipCheckpointError, match="allow_new_head"):
        load_model(tmp_path, device="cpu")
    fresh = load_model(tmp_path, device="cpu", allow_new_head=True)
    assert fresh(pixels).shape == (3,)


def test_not_siglip_is_rejected(tmp_path):
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(NotSiglipCheckpointError, match="model_type is 'bert'"):
        load_model(tmp_path, device="cpu")
    (tmp_path / "config.json").unlink()
    with pytest.raises(NotSiglipCheckpointError, match="not a SigLIP image checkpoint"):
        load_model(tmp_path / "model.safetensors", device="cpu")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(NotSiglipCheckpointError, match="not a readable safetensors"):
        load_model(tmp_path / "junk.safetensors", device="cpu")


def test_shape_mismatch_names_the_tensor(tmp_path):
    build_tiny_model().save_pretrained(tmp_path)
    tiny_config(image_size=48).save_pretrained(tmp_path)  # positions no longer match
    with pytest.raises(NotSiglipCheckpointError, match="position_embedding"):
        load_model(tmp_path, device="cpu")


def test_unavailable_model_offline_names_model_and_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelUnavailableError, match=r"someone/missing-model.*download"):
        load_model("someone/missing-model", local_files_only=True)
    with pytest.raises(ModelUnavailableError, match="no such file or folder"):
        load_model(tmp_path / "nowhere" / "model.safetensors")


def test_bf16_backbone_agrees_with_fp32(pixels):
    model = build_tiny_model(seed=5)
    with torch.no_grad():
        ref = model(pixels)
        model.to_device("cpu", torch.bfloat16)
        low = model(pixels)
    assert model.classifier.weight.dtype == torch.float32 and low.dtype == torch.float32
    torch.testing.assert_close(low, ref, atol=0.05, rtol=0.05)


def test_head_stays_fp32_under_autocast(pixels):
    model = build_tiny_model()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model(pixels)
    assert scores.dtype == torch.float32


def _forward_backward_counts(model, pixels) -> tuple[int, int]:
    """(encoder-layer forward calls, tensors saved for backward) of one training step."""
    calls = []
    mlp = model.vision_model.encoder.layers[0].mlp  # inside the checkpointed layer
    original = mlp.forward

    def counted(*args, **kwargs):  # a forward hook does not see the recompute
        calls.append(1)
        return original(*args, **kwargs)

    mlp.forward = counted
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(1) or t, lambda t: t):
        loss = model(pixels).sum()
    loss.backward()
    return len(calls), len(saved)


def test_gradient_checkpointing_recomputes_and_saves_less(pixels):
    plain = build_tiny_model().train()
    plain_calls, plain_saved = _forward_backward_counts(plain, pixels)
    model = build_tiny_model().train()
    model.enable_gradient_checkpointing()
    calls, saved = _forward_backward_counts(model, pixels)
    assert plain_calls == 1 and calls == 2  # the layer ran again during backward
    assert saved < plain_saved  # its activations were not kept from the forward
    assert model.vision_model.embeddings.patch_embedding.weight.grad is not None
    for p_plain, p_ckpt in zip(plain.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p_ckpt.grad, p_plain.grad)  # same gradients


def test_wrong_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected pixel_values \[B, 3, 32, 32\]"):
        build_tiny_model()(torch.zeros(1, 3, 64, 64))


def test_so400m_architecture_size():
    with torch.device("meta"):
        model = JoyQuality(so400m_config())
    params = sum(p.numel() for p in model.parameters())
    assert 425e6 < params < 432e6
    assert model.image_size == 512
