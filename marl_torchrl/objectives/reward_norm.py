"""Reward standardisation inside a loss: ``(r - mean) / std`` with a running mean and variance.

This is EPyMARL's ``standardise_rewards``: the learner updates the statistics with the rewards of
every batch it trains on, then trains on the standardised rewards. Ours counts the valid transitions
only (padding and burn-in are not rewards). On a sparse-reward task the effect is large: the rare
reward becomes many standard deviations, and every unrewarded step costs a little (``-mean / std``).

The statistics are buffers, so they travel with the loss's ``state_dict`` (checkpoints, resume).
Evaluation mode (``.eval()``) reads them without updating.

>>> import torch
>>> norm = RewardStandardiser()
>>> r = torch.tensor([[[0.0], [0.0], [1.0], [5.0]]])  # [B, L, 1]
>>> valid = torch.tensor([[[1.0], [1.0], [1.0], [0.0]]])  # the 5.0 is padding
>>> out = norm(r, valid)
>>> round(float(norm.mean), 4), round(float(norm.var), 4)
(0.3333, 0.2222)
>>> [round(x, 3) for x in out.flatten().tolist()[:3]]
[-0.707, -0.707, 1.414]
"""
from __future__ import annotations

import torch
from torch import nn


class RewardStandardiser(nn.Module):
    """Running mean and (population) variance of rewards, merged batch by batch (Chan et al.'s update).

    Args:
        eps: added to the variance before the square root, so a constant reward stays finite.
    """

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = float(eps)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("var", torch.ones((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, reward: torch.Tensor, valid: torch.Tensor) -> None:
        """Merge the valid entries of ``reward`` (``valid`` broadcasts to it) into the statistics."""
        w = valid.expand_as(reward).to(torch.float64)
        n = w.sum()
        if n <= 0:
            return
        r = reward.to(torch.float64)
        b_mean = (r * w).sum() / n
        b_var = ((r - b_mean).pow(2) * w).sum() / n
        total = self.count + n
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * n + delta.pow(2) * self.count * n / total
        self.mean.copy_(self.mean + delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, reward: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Update (in training mode), then return the standardised rewards in ``reward``'s dtype."""
        if self.training:
            self.update(reward, valid)
        mean, std = self.mean.to(reward.dtype), (self.var + self.eps).sqrt().to(reward.dtype)
        return (reward - mean) / std

    def extra_repr(self) -> str:
        return f"count={int(self.count)}, mean={float(self.mean):.4g}, var={float(self.var):.4g}"
