"""Torch datasets and the pair order of a run.

Workers decode and squash images into compact ``uint8`` tensors; the loop normalises
them on the device (``model.preprocess.normalize``), as the Scoring path does, so a
model sees the same pixels in training, evaluation and scoring.

The pair order is a pure function of the seed: :class:`PairStream` concatenates seeded
permutations of the training pairs until ``total_samples`` pairs, so a resumed run skips
the batches it has seen and continues with exactly the pairs the uninterrupted run
would have used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from model.preprocess import normalize, open_image, to_uint8_tensor
from training.data import ImageSource, Pairs, ParquetCell
from training.robustness import damaged_pair


def model_input(x: torch.Tensor) -> torch.Tensor:
    """What the model takes for a batch tensor: ``uint8`` pixels are normalised, pooled
    embeddings (float ``[B, hidden]``) pass as they are."""
    return normalize(x) if x.dtype == torch.uint8 else x


def read_image(source: ImageSource, name: str):
    """Decode one image source (path, bytes or table cell) into an RGB PIL image."""
    if isinstance(source, ParquetCell):
        source = source.read()
    return open_image(source, name=name)


class PairDataset(Dataset):
    """Item ``i`` is pair ``i``: ``{"a": uint8[3,S,S], "b": uint8[3,S,S], "label": p(a wins)}``."""

    def __init__(
        self, sources: Sequence[ImageSource], keys: Sequence[str], pairs: Pairs, size: int
    ):
        self.sources, self.keys, self.pairs, self.size = sources, keys, pairs, size

    def __len__(self) -> int:
        return len(self.pairs)

    def _pixels(self, index: int) -> torch.Tensor:
        return to_uint8_tensor(read_image(self.sources[index], self.keys[index]), self.size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "a": self._pixels(int(self.pairs.a[i])),
            "b": self._pixels(int(self.pairs.b[i])),
            "label": torch.tensor(float(self.pairs.label[i]), dtype=torch.float32),
        }


class ImageDataset(Dataset):
    """Item ``i`` is image ``images[i]``: ``{"pixels": uint8[3,S,S], "position": i}``."""

    def __init__(
        self, sources: Sequence[ImageSource], keys: Sequence[str], images: np.ndarray, size: int
    ):
        self.sources, self.keys, self.images, self.size = sources, keys, images, size

    def __len__(self) -> int:
        return int(self.images.size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = int(self.images[i])
        img = read_image(self.sources[g], self.keys[g])
        return {"pixels": to_uint8_tensor(img, self.size), "position": torch.tensor(i)}


class RobustnessDataset(ImageDataset):
    """Clean and damaged (JPEG or low-res) copies of test images, seeded per image."""

    def __init__(self, sources, keys, images: np.ndarray, size: int, kind: str, seed: int):
        super().__init__(sources, keys, images, size)
        self.kind, self.seed = kind, seed

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = int(self.images[i])
        img = read_image(self.sources[g], self.keys[g])
        clean, damaged = damaged_pair(img, self.kind, self.seed, g)
        return {
            "clean": to_uint8_tensor(clean, self.size),
            "damaged": to_uint8_tensor(damaged, self.size),
            "position": torch.tensor(i),
        }


class EmbeddingPairDataset(Dataset):
    """:class:`PairDataset` over cached embeddings: ``table[g]`` is image ``g``'s vector."""

    def __init__(self, table: torch.Tensor, pairs: Pairs) -> None:
        self.table, self.pairs = table, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "a": self.table[int(self.pairs.a[i])],
            "b": self.table[int(self.pairs.b[i])],
            "label": torch.tensor(float(self.pairs.label[i]), dtype=torch.float32),
        }


class EmbeddingImageDataset(Dataset):
    """:class:`ImageDataset` over cached embeddings (the vector under ``"pixels"``)."""

    def __init__(self, table: torch.Tensor, images: np.ndarray) -> None:
        self.table, self.images = table, images

    def __len__(self) -> int:
        return int(self.images.size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixels": self.table[int(self.images[i])], "position": torch.tensor(i)}


class PairStream(Sampler[int]):
    """``total`` pair indices: seeded permutations of ``range(n)``, one after another.

    Example: ``list(PairStream(3, 5, seed=0))`` is a permutation of 0..2 followed by the
    first two entries of the next permutation.
    """

    def __init__(self, n: int, total: int, seed: int):
        if n <= 0:
            raise ValueError("no training pairs to sample from")
        self.n, self.total, self.seed = n, total, seed

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[int]:
        emitted, epoch = 0, 0
        while emitted < self.total:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            take = order[: self.total - emitted]
            yield from take.tolist()
            emitted += take.size
            epoch += 1
