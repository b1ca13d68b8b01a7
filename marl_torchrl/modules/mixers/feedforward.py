"""A feed-forward (unrestricted) mixer: an MLP over the state and the agents' chosen values.

Weighted QMIX's central ``Q*`` (Rashid et al. 2020; oxwhirl/wqmix ``QMixerCentralFF``) mixes with this
network: ``Q = MLP([s, q_1, ..., q_A]) + V(s)``, ReLU hidden layers of ``mixing_embed_dim`` units and a
state-value head ``V(s)``. Nothing constrains the sign of ``dQ/dq_i``, so it can represent any joint
value function (unlike QMIX's monotonic mixer), but it gives no decentralised greedy policy.

>>> import torch
>>> mixer = FeedForwardMixer(n_agents=3, state_dim=5, mixing_embed_dim=16)
>>> mixer(torch.randn(4, 10, 3, 1), torch.randn(4, 10, 5)).shape
torch.Size([4, 10, 1])
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from marl_torchrl.modules.mixers.base import StateMixer, resolve_state_dim
from marl_torchrl.registry import MIXERS, ConfigError

__all__ = ["FeedForwardMixer", "build_feedforward"]


class FeedForwardMixer(StateMixer):
    """``Q = MLP(concat(state, q)) + V(s)``: an unrestricted mixer (Weighted QMIX's central mixer).

    Args:
        n_agents: number of agents ``A``.
        state_dim: size ``S`` of the flat global state (or torchrl's keyword ``state_shape``).
        mixing_embed_dim: width of every hidden layer (wqmix: 256).
        hidden_layers: number of ReLU hidden layers of the MLP (wqmix: 3).
        state_value: add a ``V(s)`` head (Linear-ReLU-Linear), as wqmix does, instead of relying on
            the MLP's output bias alone.
        device: torch device of the parameters.

    Inputs are ``q`` of shape ``[*B, A, 1]`` and ``state`` ``[*B, S]``; the output is ``[*B, 1]``.

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> mixer = FeedForwardMixer(n_agents=2, state_dim=4, mixing_embed_dim=8, hidden_layers=2)
    >>> q = torch.randn(64, 2, 1, requires_grad=True)
    >>> grad = torch.autograd.grad(mixer(q, torch.randn(64, 4)).sum(), q)[0]
    >>> bool((grad < 0).any() and (grad > 0).any())   # no monotonicity constraint
    True
    >>> FeedForwardMixer(2, 4, hidden_layers=0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: feedforward mixer hidden_layers must be >= 1, got 0
    """

    def __init__(
        self,
        n_agents: int,
        state_dim: int | None = None,
        mixing_embed_dim: int = 256,
        hidden_layers: int = 3,
        state_value: bool = True,
        device: Any = None,
        *,
        state_shape: Any = None,
    ):
        if int(hidden_layers) < 1:
            raise ConfigError(f"feedforward mixer hidden_layers must be >= 1, got {hidden_layers}")
        if int(mixing_embed_dim) < 1:
            raise ConfigError(f"feedforward mixer mixing_embed_dim must be >= 1, got {mixing_embed_dim}")
        state_dim = resolve_state_dim("feedforward", state_dim, state_shape)
        super().__init__(n_agents=int(n_agents), needs_state=True, state_shape=torch.Size([state_dim]), device=device)
        self.state_dim, self.embed_dim = state_dim, int(mixing_embed_dim)
        self.hidden_layers = int(hidden_layers)
        E = self.embed_dim
        layers: list[nn.Module] = []
        for i in range(self.hidden_layers):
            layers += [nn.Linear(self.state_dim + self.n_agents if i == 0 else E, E, device=device), nn.ReLU()]
        layers.append(nn.Linear(E, 1, device=device))
        self.net = nn.Sequential(*layers)
        self.V = (
            nn.Sequential(nn.Linear(self.state_dim, E, device=device), nn.ReLU(), nn.Linear(E, 1, device=device))
            if state_value
            else None
        )

    def mix(self, chosen_action_value: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Mix ``[*B, A, 1]`` agent values with a ``[*B, S]`` state into ``[*B, 1]``."""
        out = self.net(torch.cat([state, chosen_action_value.squeeze(-1)], dim=-1))
        return out if self.V is None else out + self.V(state)

    def extra_repr(self) -> str:
        return (
            f"n_agents={self.n_agents}, state_dim={self.state_dim}, embed_dim={self.embed_dim}, "
            f"hidden_layers={self.hidden_layers}, state_value={self.V is not None}"
        )


#: ``build_feedforward(n_agents, state_dim, **options)``, registered as mixer ``"feedforward"``; unknown options
#: are a ``ConfigError``.
build_feedforward = MIXERS.register_class("feedforward", FeedForwardMixer, ("device", "hidden_layers", "mixing_embed_dim", "state_value"))
