"""Random sequence batches in the replay layout, for tests and for trying a loss in isolation.

>>> td = random_sequences(batch=3, seq_len=4, n_agents=2, obs_dim=5, n_actions=6, state_dim=7, hidden_dim=8)
>>> td["agents", "observation"].shape, td["state"].shape, td["agents", "rnn_hidden"].shape
(torch.Size([3, 5, 2, 5]), torch.Size([3, 5, 7]), torch.Size([3, 2, 8]))
"""
from __future__ import annotations

import torch
from tensordict import TensorDict

from marl_torchrl import keys


def random_sequences(
    *,
    batch: int,
    seq_len: int,
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    state_dim: int,
    hidden_dim: int | None = None,
    action_mask: bool = False,
    generator: torch.Generator | None = None,
) -> TensorDict:
    """``batch`` full-length sequences (no padding, no episode end) with random content.

    The layout is that of :class:`~marl_torchrl.data.sequences.SequenceBuilder`: ``seq_len + 1``
    observation slots, transitions in the first ``seq_len``; every sequence starts an episode.
    """
    b, slots, g = batch, seq_len + 1, generator
    data = {
        keys.OBS: torch.randn(b, slots, n_agents, obs_dim, generator=g),
        keys.STATE: torch.randn(b, slots, state_dim, generator=g),
        keys.ACTION: torch.randint(n_actions, (b, slots, n_agents), generator=g),
        keys.REWARD: torch.randn(b, slots, 1, generator=g),
        keys.TERMINATED: torch.zeros(b, slots, 1, dtype=torch.bool),
        keys.IS_INIT: torch.zeros(b, slots, 1, dtype=torch.bool),
        keys.MASK: torch.ones(b, slots, 1, dtype=torch.bool),
    }
    data[keys.IS_INIT][:, 0] = True
    data[keys.MASK][:, -1] = False
    if hidden_dim is not None:
        data[keys.HIDDEN] = torch.zeros(b, n_agents, hidden_dim)
    if action_mask:
        m = torch.rand(b, slots, n_agents, n_actions, generator=g) > 0.3
        m[..., 0] = True
        data[keys.ACTION_MASK] = m
    return TensorDict(data, batch_size=[b])
