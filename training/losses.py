"""The Bradley-Terry pair loss JoyQuality is trained with.

A model score ``s`` is a latent Bradley-Terry strength: ``sigmoid(s_a - s_b)`` is the
probability that image A beats image B.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bt_loss(score_a: torch.Tensor, score_b: torch.Tensor, label_a: torch.Tensor) -> torch.Tensor:
    """Mean Bradley-Terry negative log-likelihood of a batch of pairs.

    ``label_a`` is the probability that A won: 1 for a win, 0 for a loss, 0.5 for a tie
    (ties train as soft labels). With ``label_a = 1`` this is upstream's
    ``softplus(-(s_winner - s_loser))``. Computed in fp32 whatever the score dtype.

    Example: ``bt_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0]))``
    is ``softplus(-1) = 0.3133``.
    """
    if score_a.shape != score_b.shape or score_a.shape != label_a.shape:
        raise ValueError(
            f"shape mismatch: score_a {tuple(score_a.shape)}, score_b {tuple(score_b.shape)}, "
            f"label_a {tuple(label_a.shape)}"
        )
    diff = score_a.float() - score_b.float()
    label = label_a.float()
    return (label * F.softplus(-diff) + (1.0 - label) * F.softplus(diff)).mean()
