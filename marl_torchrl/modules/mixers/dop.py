"""DOP's linearly decomposed mixer (Wang et al. 2021): ``Q_tot(s, a) = sum_i k_i(s) Q_i + b(s)``.

The weights ``k_i(s) >= 0`` come from a hypernetwork on the global state (``abs`` of its output), the
bias ``b(s)`` from a small MLP. ``Q_tot`` is exactly linear in each agent's value, with
``dQ_tot/dQ_i = k_i(s)``: that is what lets DOP improve each agent's policy against ``k_i(s) Q_i``
alone, without the other agents' fresh actions. A torchrl ``Mixer``, so it also drops into the
value-decomposition algorithm (``algorithm.mixer=dop``) and torchrl's ``QMixerLoss``. (DOP's official
code normalises ``k`` by its sum and drops ``b``; this follows the paper.)

>>> import torch
>>> mixer = DOPMixer(n_agents=3, state_dim=5)
>>> q, state = torch.randn(4, 3, 1, requires_grad=True), torch.randn(4, 5)
>>> k, b = mixer.weights(state)
>>> grad = torch.autograd.grad(mixer(q, state).sum(), q)[0].squeeze(-1)
>>> bool(torch.allclose(grad, k)), bool((k >= 0).all())
(True, True)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from marl_torchrl.modules.mixers.base import StateMixer, resolve_state_dim
from marl_torchrl.registry import MIXERS, ConfigError

__all__ = ["DOPMixer", "build_dop"]


class DOPMixer(StateMixer):
    """``Q_tot = sum_i k_i(s) q_i + b(s)`` with ``k_i(s) = |hyper_k(s)_i| >= 0``.

    Args:
        n_agents: number of agents ``A``.
        state_dim: size ``S`` of the flat global state (or torchrl's keyword ``state_shape``).
        hypernet_embed: hidden width of the ``k`` hypernetwork (Linear-ReLU-Linear) and of ``b(s)`` (default
            64); torchrl's keyword ``mixing_embed_dim`` sets it too.
        device: torch device of the parameters.

    Inputs ``q`` ``[*B, A, 1]`` and ``state`` ``[*B, S]``; output ``[*B, 1]``.

    >>> DOPMixer(2, 4)(torch.zeros(6, 2, 1), torch.randn(6, 4)).shape
    torch.Size([6, 1])
    >>> DOPMixer(2, 4, hypernet_embed=0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: dop mixer hypernet_embed must be >= 1, got 0
    """

    def __init__(self, n_agents: int, state_dim: int | None = None, hypernet_embed: int | None = None,
                 device: Any = None, *, state_shape: Any = None, mixing_embed_dim: int | None = None):
        if hypernet_embed is not None and mixing_embed_dim is not None and int(hypernet_embed) != int(mixing_embed_dim):
            raise ConfigError(f"dop mixer got hypernet_embed={hypernet_embed} but mixing_embed_dim={mixing_embed_dim}; "
                              "give one of them")
        width = next((w for w in (hypernet_embed, mixing_embed_dim) if w is not None), 64)
        if int(width) < 1:
            raise ConfigError(f"dop mixer hypernet_embed must be >= 1, got {width}")
        state_dim = resolve_state_dim("dop", state_dim, state_shape)
        super().__init__(n_agents=int(n_agents), needs_state=True, state_shape=torch.Size([state_dim]), device=device)
        self.state_dim, self.hypernet_embed = state_dim, int(width)
        S, H, A = self.state_dim, self.hypernet_embed, self.n_agents
        self.hyper_k = nn.Sequential(nn.Linear(S, H, device=device), nn.ReLU(), nn.Linear(H, A, device=device))
        self.bias = nn.Sequential(nn.Linear(S, H, device=device), nn.ReLU(), nn.Linear(H, 1, device=device))

    def weights(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``k(s)`` ``[*B, A]`` (non-negative) and ``b(s)`` ``[*B, 1]``."""
        return self.hyper_k(state).abs(), self.bias(state)

    def mix(self, chosen_action_value: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        k, b = self.weights(state)
        return (k * chosen_action_value.squeeze(-1)).sum(-1, keepdim=True) + b

    def extra_repr(self) -> str:
        return f"n_agents={self.n_agents}, state_dim={self.state_dim}, hypernet_embed={self.hypernet_embed}"


#: ``build_dop(n_agents, state_dim, **options)``, registered as mixer ``"dop"``.
build_dop = MIXERS.register_class("dop", DOPMixer, ("device", "hypernet_embed"))
