"""Action heads for actors built on a shared agent network: bounded deterministic actions for
continuous control, and straight-through Gumbel-Softmax samples for discrete actions.

>>> import torch
>>> bound = TanhBounded(torch.tensor([[0.0, -2.0]]), torch.tensor([[1.0, 2.0]]))
>>> bound(torch.tensor([[[0.0, 100.0]]]))
tensor([[[0.5000, 2.0000]]])
>>> logits = torch.tensor([[2.0, 1.0, 0.5]], requires_grad=True)
>>> one_hot = gumbel_softmax_st(logits, temperature=1.0)
>>> sorted(one_hot.detach().flatten().tolist())
[0.0, 0.0, 1.0]
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_MASKED = -1e9  # finite, so that softmax over a masked row stays defined


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Logits with unavailable actions (``mask`` False) pushed to a very low value.

    >>> masked_logits(torch.zeros(1, 3), torch.tensor([[True, False, True]]))
    tensor([[ 0.0000e+00, -1.0000e+09,  0.0000e+00]])
    """
    if mask is None:
        return logits
    return logits.masked_fill(~mask.bool(), _MASKED)


def gumbel_softmax_st(logits: torch.Tensor, temperature: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """A straight-through Gumbel-Softmax sample: one-hot forward, the soft sample's gradient backward.

    Unavailable actions (``mask`` False) are never sampled and get no probability in the soft sample.

    >>> torch.manual_seed(0) and None
    >>> logits = torch.zeros(1000, 3, requires_grad=True)
    >>> sample = gumbel_softmax_st(logits, mask=torch.tensor([True, True, False]).expand(1000, 3))
    >>> int(sample[:, 2].sum()), bool(((sample == 0) | (sample == 1)).all())
    (0, True)
    """
    if not temperature > 0:
        raise ValueError(f"gumbel temperature must be > 0, got {temperature}")
    return F.gumbel_softmax(masked_logits(logits, mask), tau=float(temperature), hard=True, dim=-1)


def greedy_one_hot(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The one-hot argmax among available actions (what a greedy discrete actor plays).

    >>> greedy_one_hot(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([[False, True, True]]))
    tensor([[0., 0., 1.]])
    """
    index = masked_logits(logits, mask).argmax(-1)
    return F.one_hot(index, logits.shape[-1]).to(logits.dtype)


class TanhBounded(nn.Module):
    """Squashes a raw actor output into ``[low, high]`` per agent and action dimension.

    ``low``/``high`` are ``[A, d]`` (or broadcastable); ``normalised(raw)`` is the ``tanh`` value in
    ``[-1, 1]``, on which FACMAC's ``1e-3 * mean(pi^2)`` regulariser is taken.

    >>> bound = TanhBounded(torch.full((2, 1), -3.0), torch.full((2, 1), 3.0))
    >>> bound(torch.zeros(4, 2, 1)).abs().max().item()
    0.0
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if not (high > low).all():
            raise ValueError("TanhBounded needs high > low everywhere")
        self.register_buffer("centre", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def normalised(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.tanh(raw)

    def scaled(self, normalised: torch.Tensor) -> torch.Tensor:
        """A normalised action in ``[-1, 1]`` mapped into ``[low, high]``."""
        return self.centre + self.half_range * normalised

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.scaled(torch.tanh(raw))
