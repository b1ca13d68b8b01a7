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

import torch

from marl_torchrl.modules.mixers.qmix import QMixer
from marl_torchrl.registry import MIXERS

__all__ = ["NonMonotonicMixer", "build_nonmonotonic"]


class NonMonotonicMixer(QMixer):
    """``Q_tot = elu(q^T W1(s) + b1(s)) . w_final(s) + V(s)`` with unconstrained (signed) weights.

    Args:
        n_agents, state_dim, mixing_embed_dim, hypernet_layers, hypernet_embed, device, state_shape,
            init_scale, state_norm: as :class:`~marl_torchrl.modules.mixers.qmix.QMixer` (the FACMAC
            seed's ``MIXER_INIT_SCALE`` is 0.001).

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

    mixer_name = "nonmonotonic"  # in error messages

    def constrain(self, weights: torch.Tensor) -> torch.Tensor:
        """No constraint: the weights keep their sign."""
        return weights


#: ``build_nonmonotonic(n_agents, state_dim, **options)``, registered as mixer ``"nonmonotonic"``; unknown options
#: are a ``ConfigError``.
build_nonmonotonic = MIXERS.register_class("nonmonotonic", NonMonotonicMixer, (
    "device", "hypernet_embed", "hypernet_layers", "mixing_embed_dim", "init_scale", "state_norm"))
