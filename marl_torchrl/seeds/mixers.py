"""K mixers (one per seed) applied as one: :class:`StackedMixer`, on folded ``[K * B, ...]`` batches.

A mixer without parameters (VDN) mixes every row alike, so it runs as it is. A
:class:`~marl_torchrl.modules.mixers.qmix.QMixer` (or a subclass that changes only ``constrain``, as the
non-monotonic mixer) runs its own ``mix`` with each hypernetwork replaced by the K seeds' hypernetworks
stacked (:func:`~marl_torchrl.seeds.functional.stacked_layers`): the mixing formula is written once, in
``QMixer.mix``. Other mixers (QPLEX, mixers that ask for extra inputs) are not stackable yet.

>>> import torch
>>> from marl_torchrl.modules.mixers import QMixer
>>> mixers = [QMixer(n_agents=2, state_dim=4, mixing_embed_dim=8) for _ in range(3)]
>>> q, s = torch.randn(3 * 5, 7, 2, 1), torch.randn(3 * 5, 7, 4)       # 3 seeds x 5 sequences
>>> out = StackedMixer(mixers)(q, s)
>>> out.shape, torch.allclose(out[10:], mixers[2](q[10:], s[10:]), atol=1e-5)
(torch.Size([15, 7, 1]), True)
>>> normed = [QMixer(n_agents=2, state_dim=4, mixing_embed_dim=8, state_norm=True) for _ in range(3)]
>>> for i, m in enumerate(normed):
...     _ = torch.nn.init.normal_(m.state_norm.weight, std=i + 1.0)  # each seed's own affine LayerNorm
>>> torch.allclose(StackedMixer(normed)(q, s)[5:10], normed[1](q[5:10], s[5:10]), atol=1e-5)
True
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import torch
from torch import nn

from marl_torchrl.modules.mixers.qmix import QMixer
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.functional import check_same_architecture, stacked_layers

__all__ = ["StackedMixer"]

_HYPERNETS = ("hyper_w_1", "hyper_b_1", "hyper_w_final", "V")


class StackedMixer:
    """``mixer(chosen [K * B, ..., A, 1], state [K * B, ..., S]) -> [K * B, ..., 1]`` for K mixers."""

    def __init__(self, mixers: Sequence[nn.Module]):
        mixers = list(mixers)
        check_same_architecture(mixers, "mixer")
        first = mixers[0]
        self.mixers, self.k = mixers, len(mixers)
        self.needs_state = getattr(first, "needs_state", True)
        self.extra_inputs = tuple(getattr(first, "extra_inputs", ()))
        self.stateless = not any(True for _ in first.parameters())
        if self.extra_inputs or not (self.stateless or isinstance(first, QMixer)):
            raise ConfigError(f"stacked seeds cannot stack a {type(first).__name__} mixer yet "
                              "(parameter-free mixers and QMixer and its subclasses can)")

    def __call__(self, chosen: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        first = self.mixers[0]
        if self.stateless:
            return first(chosen, state) if self.needs_state else first(chosen)
        lead, k = chosen.shape[:-2], self.k
        stacked_net = SimpleNamespace(n_agents=first.n_agents, embed_dim=first.embed_dim, constrain=first.constrain)
        for name in _HYPERNETS:
            modules = [getattr(m, name) for m in self.mixers]
            setattr(stacked_net, name, lambda s, modules=modules: stacked_layers(modules, s))
        norms = [m.state_norm for m in self.mixers]  # each seed's LayerNorm of the state, or None
        stacked_net.state_norm = None if norms[0] is None else (lambda s: stacked_layers(norms, s))
        q = chosen.reshape(k, -1, *chosen.shape[-2:])  # [K, M, A, 1]
        out = type(first).mix(stacked_net, q, state.reshape(k, -1, state.shape[-1]))
        return out.view(*lead, 1)
