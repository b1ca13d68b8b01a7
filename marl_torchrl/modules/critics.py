"""Per-agent critics ``Q_i(o_i, a_i)`` with parameters shared across agents.

:class:`AgentActionCritic` scores one action per agent from that agent's observation (plus a one-hot
agent id), differentiably in the action, which is what a deterministic or straight-through
Gumbel-Softmax policy gradient needs:

- continuous actions enter the network with the observation: ``Q_i = f([o_i, a_i])``;
- discrete actions: the network gives a value per action and ``Q_i = <f(o_i), a_i>`` for a one-hot (or
  relaxed) ``a_i``. Being linear in ``a_i``, its gradient with respect to the action is exactly the
  vector of action values, so a straight-through Gumbel-Softmax gradient compares the actions' values
  rather than a ReLU network's local slope at a one-hot input.

It is feed-forward, like FACMAC's critic: it sees the current observation, not the history.

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
    """``Q_i(o_i, a_i)``: a shared MLP over ``[o_i, one-hot i]`` (and ``a_i`` for continuous actions).

    Args:
        obs_dim: per-agent observation features.
        action_dim: action encoding size (number of actions for one-hot discrete actions, action
            dimensions for continuous ones).
        n_agents: number of agents.
        discrete: one value per action, ``Q_i = <f(o_i), a_i>`` (see above); else ``f([o_i, a_i])``.
        hidden_dim, layers, agent_id, layer_norm, activation, orthogonal_init: as
            :class:`~marl_torchrl.modules.agents.SharedAgentNet` (always an MLP here).

    >>> critic = AgentActionCritic(obs_dim=2, action_dim=4, n_agents=3, discrete=True)
    >>> one_hot = torch.eye(4)[[0, 2, 3]]
    >>> bool(torch.allclose(critic(torch.zeros(3, 2), one_hot), critic.action_values(torch.zeros(3, 2)).gather(-1, torch.tensor([[0], [2], [3]]))))
    True
    """

    def __init__(self, obs_dim: int, action_dim: int, n_agents: int, *, discrete: bool = False, hidden_dim: int = 64,
                 layers: int = 2, agent_id: bool = True, layer_norm: bool = False, activation: str = "relu",
                 orthogonal_init: bool = True):
        super().__init__()
        self.obs_dim, self.action_dim, self.n_agents, self.discrete = obs_dim, action_dim, n_agents, discrete
        in_dim, out_dim = (obs_dim, action_dim) if discrete else (obs_dim + action_dim, 1)
        self.net = SharedAgentNet(
            in_dim, n_agents, out_dim, hidden_dim=hidden_dim, rnn=False, layers=layers,
            agent_id=agent_id, layer_norm=layer_norm, activation=activation, orthogonal_init=orthogonal_init,
        )

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``obs [*B, A, F]`` and ``action [*B, A, action_dim]`` -> ``[*B, A, 1]``."""
        if action.shape[-1] != self.action_dim or action.shape[:-1] != obs.shape[:-1]:
            raise ValueError(
                f"critic expects actions [..., {self.n_agents}, {self.action_dim}] matching observations "
                f"{tuple(obs.shape)}, got {tuple(action.shape)}"
            )
        if self.discrete:
            return (self.action_values(obs) * action.to(obs.dtype)).sum(-1, keepdim=True)
        return self.net(torch.cat([obs, action.to(obs.dtype)], dim=-1))[0]

    def action_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Discrete critics: every action's value ``[*B, A, n_actions]``."""
        if not self.discrete:
            raise ValueError("action_values is for discrete critics; a continuous critic scores given actions")
        return self.net(obs)[0]
