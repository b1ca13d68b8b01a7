"""A non-monotonic mixer: QMIX's hypernetwork mixer without the positivity constraint.

FACMAC (Peng et al. 2021) mixes its per-agent critics with this network: the same state-conditioned
hypernetworks, ELU hidden layer and ``V(s)`` bias as QMIX, but the mixing weights keep their sign, so
``dQ_tot/dq_i`` may be negative and the mixer can represent joint values that no monotonic mixer can
(e.g. QTRAN's game). ``algorithm=qmix_nonmono`` is value-decomposition Q-learning with this mixer.

>>> import torch
>>> mixer = NonMonotonicMixer(n_agents=2, state_dim=3, mixing_embed_dim=8)
>>> mixer(torch.randn(5, 2, 1), torch.randn(5, 3)).shape
torch.Size([5, 1])
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from marl_torchrl.modules.mixers.base import resolve_state_dim
from marl_torchrl.modules.mixers.qmix import QMixer
from marl_torchrl.registry import MIXERS, ConfigError

__all__ = ["NonMonotonicMixer", "build_nonmonotonic"]


def _output_layer(module: nn.Module) -> nn.Linear:
    return module if isinstance(module, nn.Linear) else module[-1]


class NonMonotonicMixer(QMixer):
    """``Q_tot = elu(q^T W1(s) + b1(s)) . w_final(s) + V(s)`` with unconstrained (signed) weights.

    Args:
        n_agents, state_dim, mixing_embed_dim, hypernet_layers, hypernet_embed, device, state_shape: as
            :class:`~marl_torchrl.modules.mixers.qmix.QMixer`.
        init_scale: multiplies the initial weights and biases of every hypernetwork's output layer
            (``W1``, ``b1``, ``w_final``, ``V``), as the FACMAC seed's ``MIXER_INIT_SCALE`` (0.001 there):
            a small scale starts ``Q_tot`` near zero. 1.0 keeps PyTorch's default initialisation.

    >>> torch.manual_seed(0) and None
    >>> mixer = NonMonotonicMixer(n_agents=2, state_dim=4, mixing_embed_dim=8)
    >>> q = torch.randn(64, 2, 1, requires_grad=True)
    >>> grad = torch.autograd.grad(mixer(q, torch.randn(64, 4)).sum(), q)[0]
    >>> bool((grad < 0).any())   # a negative partial derivative: not monotonic
    True
    >>> NonMonotonicMixer(2, 4, init_scale=0.0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: nonmonotonic mixer init_scale must be > 0, got 0.0
    """

    def __init__(
        self,
        n_agents: int,
        state_dim: int | None = None,
        mixing_embed_dim: int = 32,
        hypernet_layers: int = 2,
        hypernet_embed: int = 64,
        init_scale: float = 1.0,
        device: Any = None,
        *,
        state_shape: Any = None,
    ):
        if not float(init_scale) > 0:
            raise ConfigError(f"nonmonotonic mixer init_scale must be > 0, got {init_scale}")
        state_dim = resolve_state_dim("nonmonotonic", state_dim, state_shape)
        super().__init__(n_agents, state_dim, mixing_embed_dim, hypernet_layers, hypernet_embed, device)
        self.init_scale = float(init_scale)
        if self.init_scale != 1.0:
            with torch.no_grad():
                for hyper in (self.hyper_w_1, self.hyper_b_1, self.hyper_w_final, self.V):
                    out = _output_layer(hyper)
                    out.weight.mul_(self.init_scale)
                    out.bias.mul_(self.init_scale)

    def constrain(self, weights: torch.Tensor) -> torch.Tensor:
        """No constraint: the weights keep their sign."""
        return weights

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init_scale={self.init_scale}"


#: ``build_nonmonotonic(n_agents, state_dim, **options)``, registered as mixer ``"nonmonotonic"``; unknown options
#: are a ``ConfigError``.
build_nonmonotonic = MIXERS.register_class("nonmonotonic", NonMonotonicMixer, ("device", "hypernet_embed", "hypernet_layers", "mixing_embed_dim", "init_scale"))
