"""Per-agent critics ``Q_i(o_i, a_i)`` with parameters shared across agents.

:class:`AgentActionCritic` scores one action per agent from that agent's observation (plus a one-hot
agent id): the action enters as a one-hot vector (discrete) or as the action itself (continuous), so the
same critic is differentiable in the action, which is what a deterministic or straight-through
Gumbel-Softmax policy gradient needs. It is feed-forward, like FACMAC's critic: it sees the current
observation, not the history.

>>> import torch
>>> critic = AgentActionCritic(obs_dim=5, action_dim=3, n_agents=2, hidden_dim=16)
>>> critic(torch.randn(4, 7, 2, 5), torch.randn(4, 7, 2, 3)).shape
torch.Size([4, 7, 2, 1])
"""
from __future__ import annotations

import torch
from torch import nn

from marl_torchrl.modules.agents import SharedAgentNet


class AgentActionCritic(nn.Module):
    """``Q_i(o_i, a_i)``: a shared MLP over ``[o_i, a_i, one-hot i]`` with one output per agent.

    Args:
        obs_dim: per-agent observation features.
        action_dim: action encoding size (number of actions for one-hot discrete actions, action
            dimensions for continuous ones).
        n_agents: number of agents.
        hidden_dim, layers, agent_id, layer_norm, activation, orthogonal_init: as
            :class:`~marl_torchrl.modules.agents.SharedAgentNet` (always an MLP here).

    >>> critic = AgentActionCritic(obs_dim=2, action_dim=4, n_agents=3)
    >>> critic(torch.zeros(3, 2), torch.zeros(3, 4)).shape
    torch.Size([3, 1])
    """

    def __init__(self, obs_dim: int, action_dim: int, n_agents: int, *, hidden_dim: int = 64, layers: int = 2,
                 agent_id: bool = True, layer_norm: bool = False, activation: str = "relu",
                 orthogonal_init: bool = True):
        super().__init__()
        self.obs_dim, self.action_dim, self.n_agents = obs_dim, action_dim, n_agents
        self.net = SharedAgentNet(
            obs_dim + action_dim, n_agents, 1, hidden_dim=hidden_dim, rnn=False, layers=layers,
            agent_id=agent_id, layer_norm=layer_norm, activation=activation, orthogonal_init=orthogonal_init,
        )

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``obs [*B, A, F]`` and ``action [*B, A, action_dim]`` -> ``[*B, A, 1]``."""
        if action.shape[-1] != self.action_dim or action.shape[:-1] != obs.shape[:-1]:
            raise ValueError(
                f"critic expects actions [..., {self.n_agents}, {self.action_dim}] matching observations "
                f"{tuple(obs.shape)}, got {tuple(action.shape)}"
            )
        return self.net(torch.cat([obs, action.to(obs.dtype)], dim=-1))[0]
