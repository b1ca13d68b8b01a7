"""Per-feature standardisation of observations by the statistics of every observation collected so far.

:class:`RunningStandardise` maps ``x`` to ``(x - mean) / sqrt(var + eps)`` per feature. Its statistics are
buffers (so checkpoints, evaluation and target copies carry them), moved only by :meth:`RunningStandardise.update`,
which the training loop calls once per collected batch, before the updates on it. A forward pass never moves
them: acting and the loss see the same function between two batches, which keeps the recurrent contract.
This is the role the input BatchNorm plays in PQN's reference SMAX network (whose acting pass uses the
running statistics), without batch statistics in the loss.

>>> import torch
>>> norm = RunningStandardise(2)
>>> norm(torch.tensor([[3.0, -1.0]]))  # before any update: the identity
tensor([[ 3., -1.]])
>>> norm.update(torch.tensor([[1.0, 10.0], [3.0, 10.0]]))
>>> norm.mean.tolist(), norm.var.tolist(), int(norm.count)
([2.0, 10.0], [1.0, 0.0], 2)
>>> norm(torch.tensor([[3.0, 10.0]])).round(decimals=4)  # 1 / sqrt(1 + eps); a constant feature maps to 0
tensor([[1., 0.]])
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["RunningStandardise", "standardise"]


def standardise(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` (statistics broadcast over ``x``'s leading dimensions)."""
    return (x - mean) * torch.rsqrt(var + eps)


class RunningStandardise(nn.Module):
    """Standardises the last dimension (``features`` wide) by the mean and (population) variance of every
    sample passed to :meth:`update`; the identity until the first update.

    Args:
        features: size of the last dimension.
        eps: added to the variance (a constant feature maps to 0, as in BatchNorm).
    """

    def __init__(self, features: int, eps: float = 1e-5):
        super().__init__()
        self.features, self.eps = int(features), float(eps)
        self.register_buffer("mean", torch.zeros(self.features))
        self.register_buffer("var", torch.ones(self.features) - self.eps)  # identity before any update
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return standardise(x, self.mean, self.var, self.eps)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the samples ``x [..., features]`` into the statistics (exact running mean and variance,
        Chan et al.'s pairwise update, accumulated in float64)."""
        if x.shape[-1] != self.features:
            raise ValueError(f"RunningStandardise expects [..., {self.features}] samples, got {tuple(x.shape)}")
        x = x.reshape(-1, self.features).to(torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        b_mean, b_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n  # with no samples yet (count 0) this is the batch's own mean and variance
        old_mean, old_var = self.mean.to(torch.float64), self.var.to(torch.float64)
        delta = b_mean - old_mean
        mean = old_mean + delta * (n / total)
        var = (old_var * self.count + b_var * n + delta.pow(2) * self.count * n / total) / total
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(total)

    def extra_repr(self) -> str:
        return f"{self.features}, eps={self.eps}"
