"""The split of a project's votes into train and test, by image, and what it costs.

The split is by image, so no test image is ever seen in training: a pair goes to
train when both images are train images, to test when both are test images, and is
left out of both when it mixes them. Test images are a seeded random share of the
images that have votes; of ``tries`` such draws the one keeping the most test pairs
wins (a random test set keeps only about ``fraction**2`` of the pairs, so picking the
best of a few equally random draws keeps noticeably more without favouring any
kind of image). Same votes and seed, same split.

A small project pays dearly for that: at a 10% image share, 60 votes over 27 images
keep about one test pair and leave a quarter to a half of the pairs out as mixed. When the requested
share keeps fewer than ``USABLE_TEST_PAIRS`` test pairs, :func:`choose_split` raises it
step by step (up to ``MAX_AUTO_FRACTION``, so training keeps the larger half) to the
smallest share that does; when even that fails it keeps the requested share and the
report says plainly that there is no usable test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ranker.errors import StudioError

SPLIT_TRIES = 32
# The fewest test pairs worth measuring on at all: at 10 pairs a 95% interval on
# accuracy is still about +-0.28 wide; below it a "test accuracy" is noise.
USABLE_TEST_PAIRS = 10
MAX_AUTO_FRACTION = 0.5  # a raised test share never takes more than half the images
AUTO_FRACTION_STEP = 0.05


@dataclass(frozen=True)
class SplitReport:
    """How the images and pairs were divided; shown in the app and the dataset card."""

    voted_images: int
    train_images: int
    test_images: int
    unvoted_images: int
    train_pairs: int
    test_pairs: int
    mixed_pairs: int
    ties: int
    test_fraction: float
    seed: int
    requested_fraction: float | None = None  # what was asked, when the split raised it
    requested_test_pairs: int | None = None  # decisive test pairs the requested share kept
    decisive_test_pairs: int | None = None  # test pairs that are not ties

    def summary(self) -> str:
        return (
            f"{self.train_pairs} train pairs, {self.test_pairs} test pairs "
            f"({self.train_images} train / {self.test_images} test images); "
            f"{self.mixed_pairs} mixed pairs left out; {self.ties} ties"
        )

    @property
    def raised(self) -> bool:
        """Whether the split took a larger test share than asked, to keep a test set."""
        return self.requested_fraction is not None and self.requested_fraction != self.test_fraction

    @property
    def usable_test(self) -> bool:
        return self._decisive() >= USABLE_TEST_PAIRS

    def _decisive(self) -> int:
        return self.test_pairs if self.decisive_test_pairs is None else self.decisive_test_pairs

    def split_notes(self) -> list[str]:
        """What the split costs and whether its test set means anything, in plain words.

        >>> r = SplitReport(27, 19, 8, 0, 21, 12, 27, 0, 0.3, 0, 0.1, 1)
        >>> print("\\n".join(r.split_notes()))
        The split costs 27 of 60 pairs (45%): a pair with one train and one test image is in neither split.
        Test share raised from 10% to 30% so that the test split keeps 12 pairs (at 10% it kept 1 that are not ties; at least 10 are needed to measure anything).
        """
        total = self.train_pairs + self.test_pairs + self.mixed_pairs
        notes = []
        if self.test_fraction > 0:
            notes.append(
                f"The split costs {self.mixed_pairs} of {total} pairs "
                f"({self.mixed_pairs / max(total, 1):.0%}): a pair with one train and one "
                "test image is in neither split."
            )
        if self.test_fraction == 0:
            notes.append("No test split (test share 0): nothing will measure a model on it.")
        elif self.raised:
            notes.append(
                f"Test share raised from {self.requested_fraction:.0%} to "
                f"{self.test_fraction:.0%} so that the test split keeps {self.test_pairs} "
                f"pairs (at {self.requested_fraction:.0%} it kept {self.requested_test_pairs} "
                f"that are not ties; at least {USABLE_TEST_PAIRS} are needed to measure "
                "anything)."
            )
        if self.test_fraction > 0 and not self.usable_test:
            notes.append(
                f"No usable test set: {self.test_pairs} test pairs ({self._decisive()} not "
                f"ties), and no test share up to {MAX_AUTO_FRACTION:.0%} keeps "
                f"{USABLE_TEST_PAIRS} that are not ties. A model trained on this "
                "cannot be measured; vote more (pairs within the same images help most)."
            )
        return notes


def choose_test_images(
    pairs: Sequence[tuple[str, str]], fraction: float, seed: int, tries: int = SPLIT_TRIES
) -> frozenset[str]:
    """A seeded random ``fraction`` of the voted images; the draw keeping most test pairs.

    >>> sorted(choose_test_images([("a", "b"), ("b", "c"), ("c", "d")], 0.5, seed=0))
    ['c', 'd']
    """
    return _best_draw(_indexed(pairs), fraction, seed, tries)[0]


@dataclass(frozen=True)
class SplitChoice:
    """The test images of a split, the share used, and what the requested share kept."""

    test: frozenset[str]
    fraction: float
    test_pairs: int
    requested_fraction: float
    requested_test_pairs: int


def choose_split(
    pairs: Sequence[tuple[str, str]],
    fraction: float,
    seed: int,
    tries: int = SPLIT_TRIES,
    usable: int = USABLE_TEST_PAIRS,
    decisive: Sequence[bool] | None = None,
) -> SplitChoice:
    """The requested split, or for a small project the smallest larger share (in steps of
    ``AUTO_FRACTION_STEP``, at most ``MAX_AUTO_FRACTION``) that keeps ``usable`` test
    pairs; the requested one when none does (the report then says there is no test set).

    ``decisive`` marks the pairs that count (a tie measures no accuracy: 20 tied test
    pairs between three equally good images are not a test set); all count by default.

    >>> pairs = [(f"i{a}", f"i{b}") for a in range(12) for b in range(a + 1, 12)][:40]
    >>> c = choose_split(pairs, 0.1, seed=0)
    >>> (c.requested_test_pairs, c.fraction, c.test_pairs >= 10)
    (0, 0.5, True)
    """
    indexed = _indexed(pairs, decisive)
    test, kept = _best_draw(indexed, fraction, seed, tries)
    choice = SplitChoice(test, fraction, kept, fraction, kept)
    if kept >= usable or fraction == 0:
        return choice
    step = 1
    while (share := round(fraction + step * AUTO_FRACTION_STEP, 4)) <= MAX_AUTO_FRACTION:
        raised, raised_kept = _best_draw(indexed, share, seed, tries)
        if raised_kept >= usable:
            return SplitChoice(raised, share, raised_kept, fraction, kept)
        step += 1
    return choice


def _indexed(
    pairs: Sequence[tuple[str, str]], counted: Sequence[bool] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image uids (every voted image) and the index pairs of the pairs that count."""
    uids = sorted({u for pair in pairs for u in pair})
    index = {u: i for i, u in enumerate(uids)}
    keep = [True] * len(pairs) if counted is None else list(counted)
    first = np.array([index[a] for (a, _), k in zip(pairs, keep, strict=True) if k], np.int64)
    second = np.array([index[b] for (_, b), k in zip(pairs, keep, strict=True) if k], np.int64)
    return uids, first, second


def _best_draw(indexed, fraction: float, seed: int, tries: int) -> tuple[frozenset[str], int]:
    """Of ``tries`` seeded draws of ``fraction`` of the images, the one keeping most test
    pairs, and how many it keeps."""
    if not 0.0 <= fraction < 1.0:
        raise StudioError(f"test fraction must be in [0, 1), not {fraction}")
    uids, first, second = indexed
    k = int(round(fraction * len(uids)))
    if k == 0:
        return frozenset(), 0
    rng = np.random.default_rng(seed)
    best, best_kept = None, -1
    for _ in range(max(1, tries)):
        mask = np.zeros(len(uids), dtype=bool)
        mask[rng.choice(len(uids), size=k, replace=False)] = True
        kept = int(np.count_nonzero(mask[first] & mask[second]))
        if kept > best_kept:
            best, best_kept = mask, kept
    return frozenset(u for u, m in zip(uids, best, strict=True) if m), best_kept


def pair_split(left: str, right: str, test: frozenset[str]) -> str | None:
    """ "train", "test", or None for a pair with one image on each side of the split."""
    in_test = (left in test) + (right in test)
    return "test" if in_test == 2 else "train" if in_test == 0 else None
