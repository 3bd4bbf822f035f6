"""Pooled embeddings, computed once per image and backbone and kept on disk.

Head-only training and anything else that only needs the frozen backbone's output (a
preference head over a project, near-duplicate search) should never pay the
backbone's forward twice for the same pixels. The cache key has two halves:

- the *backbone fingerprint*: a hash of the vision tower's config, its weights and the
  numeric precision the forward ran in. The linear head is left out on purpose: a
  fine-tuned head over the same backbone shares its base model's embeddings.
- the *image digest*: a hash of the image file's bytes (not its name or path), so a
  renamed or re-uploaded copy is found and an edited file is not.

Layout: ``<root>/<fingerprint>/<digest[:2]>/<digest>.npy`` (one fp32 vector per file,
written atomically, so a crash never leaves a half-written entry and several processes
may fill the same cache).

Example::

    cache = EmbeddingCache.for_model(root, model)
    vectors = embed_images(model, ["a.jpg", b"...jpeg bytes..."], cache)   # [2, hidden]
    model.head(vectors)                                                     # the scores
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from model.preprocess import normalize, open_image, to_uint8_tensor

ImageItem = str | Path | bytes
DIGEST_CHARS = 32  # 128 bits of blake2b: collisions are not a practical concern


def image_digest(data: bytes) -> str:
    """The content key of an image: blake2b of its file bytes (hex).

    >>> image_digest(b"abc")[:12]
    'cf4ab791c62b'
    """
    return hashlib.blake2b(data, digest_size=DIGEST_CHARS // 2).hexdigest()


def read_bytes(item: ImageItem) -> bytes:
    """The file bytes of an image given as a path or as bytes."""
    return (
        bytes(item) if isinstance(item, bytes | bytearray | memoryview) else Path(item).read_bytes()
    )


PRECISIONS = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def precision_of(model: torch.nn.Module) -> str:
    """The precision label of the dtype ``model``'s backbone runs in (fp32, bf16, fp16):
    vectors computed in bf16 on a GPU are cached apart from fp32 ones."""
    dtype = model.backbone_dtype
    return PRECISIONS.get(dtype, str(dtype).removeprefix("torch."))


def backbone_fingerprint(model: torch.nn.Module, precision: str = "fp32") -> str:
    """A hash of what decides the pooled embedding: vision config, vision weights, precision.

    ``model`` is a :class:`model.joyquality.JoyQuality`. Hashing the so400m weights
    (1.7 GB) takes about a second; do it once per run, not per image.
    """
    h = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
    vision = model.config.vision_config.to_dict()
    for volatile in ("transformers_version", "_name_or_path", "torch_dtype", "dtype"):
        vision.pop(volatile, None)
    h.update(json.dumps(vision, sort_keys=True, default=str).encode())
    h.update(precision.encode())
    for name, tensor in sorted(model.vision_model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings of one backbone (``fingerprint``) under ``root``, keyed by image digest."""

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.folder = self.root / fingerprint

    @classmethod
    def for_model(
        cls, root: str | Path, model: torch.nn.Module, precision: str = "fp32"
    ) -> EmbeddingCache:
        return cls(root, backbone_fingerprint(model, precision))

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        """The cached vector, or None when absent (or unreadable: it is then recomputed)."""
        try:
            return np.load(self._path(digest), allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            return None

    def put(self, digest: str, vector: np.ndarray) -> None:
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, np.asarray(vector, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.npy")) if self.folder.is_dir() else 0


class _Pixels(Dataset):
    """Decoded, squashed ``uint8`` pixels of the images still missing from the cache."""

    def __init__(self, items: Sequence[bytes], names: Sequence[str], size: int) -> None:
        self.items, self.names, self.size = items, names, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = open_image(self.items[i], name=self.names[i])
        return {"pixels": to_uint8_tensor(img, self.size), "position": torch.tensor(i)}


@torch.no_grad()
def embed_images(
    model: torch.nn.Module,
    items: Sequence[ImageItem],
    cache: EmbeddingCache | None = None,
    *,
    names: Sequence[str] | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Pooled embeddings ``[len(items), hidden]`` (fp32, CPU), reading and filling ``cache``.

    Only images missing from the cache go through the backbone, in batches on
    ``device`` (default: the model's) under ``autocast()`` when given, exactly as the
    training loop would run them. An unreadable image raises ``ImageReadError`` naming it.
    """
    names = list(names) if names is not None else [str(i) for i in range(len(items))]
    data = [read_bytes(item) for item in items]
    digests = [image_digest(d) for d in data]
    hidden = model.config.vision_config.hidden_size
    out = torch.empty(len(items), hidden, dtype=torch.float32)
    missing: dict[str, int] = {}  # digest -> first position needing it
    for i, digest in enumerate(digests):
        vector = cache.get(digest) if cache is not None else None
        if vector is not None and vector.shape == (hidden,):
            out[i] = torch.from_numpy(vector)
        else:
            missing.setdefault(digest, i)
    if missing:
        todo = list(missing.values())
        loader = DataLoader(
            _Pixels([data[i] for i in todo], [names[i] for i in todo], model.image_size),
            batch_size=batch_size,
            num_workers=num_workers,
        )
        device = device or model.device
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                with autocast() if autocast is not None else contextlib.nullcontext():
                    pooled = model.pooled(normalize(batch["pixels"].to(device)))
                for pos, vector in zip(
                    batch["position"].tolist(), pooled.float().cpu(), strict=True
                ):
                    out[todo[pos]] = vector
                    if cache is not None:
                        cache.put(digests[todo[pos]], vector.numpy())
        finally:
            model.train(was_training)
        for i, digest in enumerate(digests):  # duplicates of an image computed above
            first = missing.get(digest)
            if first is not None and first != i:
                out[i] = out[first]
    return out
