"""Reading K modules of one architecture as one stacked module: stacked parameters and stacked layers.

The K modules keep their own parameters (each seed's optimiser, clipping and checkpoints stay its own);
:func:`stacked` reads one parameter of all K as a ``[K, ...]`` tensor with ``torch.stack``, whose backward
hands each seed's slice of the gradient to that seed's parameter. Nothing is copied back: the stack is
read again at every call, so it always sees the current weights (after an optimiser or target update).

:func:`stacked_layers` runs K copies of a layer or of an ``nn.Sequential`` of linear layers,
layer norms and stateless activations on ``x [K, M, in]``, seed ``k``'s rows with seed ``k``'s weights:
a linear layer is one ``torch.baddbmm`` over the seed dimension.

>>> import torch
>>> from torch import nn
>>> nets = [nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU(), nn.Linear(4, 2)) for _ in range(2)]
>>> x = torch.randn(2, 5, 3)
>>> y = stacked_layers(nets, x)
>>> y.shape, torch.allclose(y[1], nets[1](x[1]), atol=1e-6)
(torch.Size([2, 5, 2]), True)
>>> y.sum().backward()
>>> nets[0][0].weight.grad.shape                      # each seed's own parameter got its gradient
torch.Size([4, 3])
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from marl_torchrl.modules.running_norm import RunningStandardise, standardise
from marl_torchrl.registry import ConfigError

__all__ = ["stacked", "stacked_layers", "STATELESS"]

#: Layers without parameters, applied as they are to the stacked tensor.
STATELESS = (nn.ReLU, nn.Tanh, nn.ELU, nn.GELU, nn.Identity)


def stacked(modules: Sequence[nn.Module], name: str) -> torch.Tensor:
    """``[K, *shape]``: the parameter ``name`` of every module, stacked (differentiable)."""
    return torch.stack([m.get_parameter(name) for m in modules])


def stacked_linear(linears: Sequence[nn.Linear], x: torch.Tensor) -> torch.Tensor:
    """``x [K, M, in] -> [K, M, out]``: seed ``k``'s rows through seed ``k``'s ``nn.Linear``.

    The bias is added in place after the product: ``baddbmm`` would first copy the broadcast bias into the
    whole output (a fifth slower on balance's batches)."""
    y = torch.bmm(x, stacked(linears, "weight").transpose(1, 2))  # weights [K, in, out]
    return y if linears[0].bias is None else y.add_(stacked(linears, "bias").unsqueeze(1))


def stacked_layer_norm(norms: Sequence[nn.LayerNorm], x: torch.Tensor) -> torch.Tensor:
    """``nn.LayerNorm`` per seed: the statistics are each row's own; the affine parameters each seed's."""
    first = norms[0]
    y = F.layer_norm(x, first.normalized_shape, eps=first.eps)
    if first.weight is None:
        return y
    view = (len(norms),) + (1,) * (x.dim() - 1 - len(first.normalized_shape)) + tuple(first.normalized_shape)
    y = y * stacked(norms, "weight").view(view)
    return y if first.bias is None else y + stacked(norms, "bias").view(view)


def stacked_standardise(norms: Sequence[RunningStandardise], x: torch.Tensor) -> torch.Tensor:
    """:class:`~marl_torchrl.modules.running_norm.RunningStandardise` per seed on ``x [K, ..., F]``: each
    seed's rows by that seed's running statistics."""
    view = (len(norms),) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    mean, var = (torch.stack([getattr(n, name) for n in norms]).view(view) for name in ("mean", "var"))
    return standardise(x, mean, var, norms[0].eps)


def stacked_layers(modules: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """K copies of one layer (``nn.Linear``, ``nn.LayerNorm``, a stateless activation) or of an
    ``nn.Sequential`` of them, on ``x [K, M, in]``; anything else is a ``ConfigError``."""
    first = modules[0]
    if isinstance(first, nn.Sequential):
        for i in range(len(first)):
            x = stacked_layers([m[i] for m in modules], x)
        return x
    if isinstance(first, nn.Linear):
        return stacked_linear(modules, x)
    if isinstance(first, nn.LayerNorm):
        return stacked_layer_norm(modules, x)
    if isinstance(first, RunningStandardise):
        return stacked_standardise(modules, x)
    if isinstance(first, STATELESS):
        return first(x)
    raise ConfigError(f"stacked seeds cannot stack a {type(first).__name__} layer yet")


def check_same_architecture(modules: Sequence[nn.Module], what: str) -> None:
    """A one-line ``ConfigError`` unless the K modules have the same type and parameter shapes."""
    if not modules:
        raise ConfigError(f"stacked seeds need at least one {what}")
    first = modules[0]
    shapes = [(n, tuple(p.shape)) for n, p in first.named_parameters()]
    for i, m in enumerate(modules[1:], start=1):
        if type(m) is not type(first) or [(n, tuple(p.shape)) for n, p in m.named_parameters()] != shapes:
            raise ConfigError(f"stacked seeds need one architecture: {what} {i} differs from {what} 0")
