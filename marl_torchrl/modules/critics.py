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


class HistoryCritic(nn.Module):
    """Per-agent critic over the agent's own history: ``Q_i(tau_i, a_i)`` with a shared GRU (or MLP) trunk.

    The trunk (a :class:`~marl_torchrl.modules.agents.SharedAgentNet`, one-hot agent id optional) turns
    each agent's observation sequence into features ``h_t``; a head scores actions from them: every
    action's value for discrete actions (``[.., n_actions]``), ``f([h_t, a])`` for continuous ones. The
    critic never acts, so its recurrence starts from zero at the start of each replayed sequence (exact
    for whole-episode sequences, the default).

    >>> critic = HistoryCritic(obs_dim=3, action_dim=4, n_agents=2, discrete=True, hidden_dim=8)
    >>> h = critic.features(torch.randn(5, 7, 2, 3))
    >>> critic.values(h).shape, h.shape
    (torch.Size([5, 7, 2, 4]), torch.Size([5, 7, 2, 8]))
    >>> cont = HistoryCritic(obs_dim=3, action_dim=2, n_agents=2, discrete=False, hidden_dim=8)
    >>> cont.values(cont.features(torch.randn(5, 7, 2, 3)), torch.zeros(5, 7, 2, 2)).shape
    torch.Size([5, 7, 2, 1])
    """

    def __init__(self, obs_dim: int, action_dim: int, n_agents: int, *, discrete: bool, hidden_dim: int = 64,
                 rnn: bool = True, agent_id: bool = True, orthogonal_init: bool = True):
        super().__init__()
        self.discrete, self.action_dim = discrete, action_dim
        self.trunk = SharedAgentNet(obs_dim, n_agents, hidden_dim, hidden_dim=hidden_dim, rnn=rnn, layers=1,
                                    agent_id=agent_id, orthogonal_init=orthogonal_init)
        in_dim, out_dim = (hidden_dim, action_dim) if discrete else (hidden_dim + action_dim, 1)
        self.head = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))

    def features(self, obs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, T, A, F]`` observations -> ``[N, T, A, H]`` history features (from ``h0``, zero if None)."""
        return self.trunk.unroll(obs, h0)[0]

    def forward(self, features: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`values` (so the head can be called with detached parameters)."""
        return self.values(features, action)

    def values(self, features: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        """Discrete: all actions' values ``[..., n]``; continuous: the value of ``action`` ``[..., 1]``."""
        h = torch.relu(features)
        if self.discrete:
            return self.head(h)
        if action is None:
            raise ValueError("a continuous critic needs the action to score")
        return self.head(torch.cat([h, action.to(h.dtype)], dim=-1))
