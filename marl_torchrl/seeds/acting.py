"""K seeds' epsilon-greedy policies acting on one folded batch: :class:`StackedActingPolicy`.

Batched collection (:mod:`~marl_torchrl.seeds.collection`) steps one env of ``K x E`` envs, seed ``k``'s
in rows ``k * E ... (k + 1) * E - 1``. This policy computes every seed's Q-values with its own agent
network in one stacked forward (:class:`~marl_torchrl.seeds.agents.StackedAgentNet`, one step of the
GRU, the hidden state zeroed where an episode starts), takes the greedy actions over them at once, and
then explores per seed: seed ``k``'s own ``EGreedyModule`` (its own epsilon schedule) acts on its rows
inside ``rng(k)``, where the caller switches in seed ``k``'s torch generator, so its draws are those seed
``k``'s single run makes. It writes the keys each seed's own policy writes.

>>> import contextlib, torch
>>> from tensordict import TensorDict
>>> from marl_torchrl.algorithms.acting import epsilon_greedy_policy
>>> from marl_torchrl.envs import EnvSpecInfo
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> info = EnvSpecInfo(2, 3, 6, 4, False, None, None, False, 10)
>>> policies = [epsilon_greedy_policy(SharedAgentNet(3, 2, 4, hidden_dim=8), info, "cpu", eps=(0.0, 0.0, 1.0),
...                                   total_frames=100)[0] for _ in range(2)]
>>> stacked = StackedActingPolicy.of(policies, block=5, rng=lambda k: contextlib.nullcontext())
>>> td = TensorDict({("agents", "observation"): torch.randn(10, 2, 3), ("agents", "rnn_hidden"): torch.zeros(10, 2, 8),
...                  "is_init": torch.ones(10, 1, dtype=torch.bool)}, [10])
>>> out = stacked(td.clone())
>>> out["agents", "action"].shape, out["next", "agents", "rnn_hidden"].shape
(torch.Size([10, 2]), torch.Size([10, 2, 8]))
>>> out["agents", "action"][5:].equal(policies[1](td[5:].clone())["agents", "action"])   # seed 1's rows
True
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase, TensorDictSequential
from tensordict.utils import expand_as_right
from torchrl.data import Composite
from torchrl.envs.utils import ExplorationType, exploration_type
from torchrl.modules import EGreedyModule, QValueModule

from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.recurrence import AgentNetModule
from marl_torchrl.seeds.agents import StackedAgentNet

__all__ = ["StackedActingPolicy"]


def _parts(policy) -> tuple | None:
    """``(agent module, greedy module, exploration module)`` of an epsilon-greedy policy, else None."""
    mods = list(policy.module) if isinstance(policy, TensorDictSequential) else []
    if len(mods) != 3:
        return None
    agent, greedy, explore = mods
    ok = (isinstance(agent, AgentNetModule) and isinstance(agent.net, SharedAgentNet)
          and isinstance(greedy, QValueModule) and isinstance(explore, EGreedyModule))
    return (agent, greedy, explore) if ok else None


class StackedActingPolicy(TensorDictModuleBase):
    """The acting policies of K seeds on ``[K * block]`` tensordicts (see the module docstring).

    Build it with :meth:`of`, which says None for policies it cannot stack (not epsilon-greedy over a
    :class:`~marl_torchrl.modules.agents.SharedAgentNet`). It owns no parameters: every call reads the
    seeds' networks as they are, so it needs no weight update after a gradient step.
    """

    def __init__(self, parts: Sequence[tuple], block: int, rng: Callable[[int], AbstractContextManager]):
        super().__init__()
        self.agent, self.greedy = parts[0][0], parts[0][1]
        self.explore = [p[2] for p in parts]
        self.stack = StackedAgentNet([p[0].net for p in parts])
        self.block, self.rng = int(block), rng
        self.in_keys, self.out_keys = list(self.agent.in_keys), [*self.agent.out_keys, *self.greedy.out_keys]

    @classmethod
    def of(cls, policies: Sequence, block: int, rng: Callable[[int], AbstractContextManager]):
        """The stacked policy of ``policies`` (one per seed), or None where they cannot be stacked."""
        parts = [_parts(p) for p in policies]
        if any(p is None for p in parts):
            return None
        return cls(parts, block, rng)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        agent, e = self.agent, self.block
        obs = tensordict.get(agent.obs_key)
        hidden = None
        if self.stack.rnn:
            hidden = tensordict.get(agent.hidden_key, None)
            if hidden is None:
                hidden = obs.new_zeros(*obs.shape[:-1], self.stack.hidden_dim)
            is_init = tensordict.get(agent.is_init_key, None)
            if is_init is not None:
                hidden = torch.where(is_init.reshape(*is_init.shape[:-1], 1, 1), 0.0, hidden)
        out, next_hidden = self.stack.unroll(obs.unsqueeze(1), hidden)
        tensordict.set(agent.out_keys[0], out.squeeze(1))
        if self.stack.rnn:
            tensordict.set(agent.out_keys[1], next_hidden)
        self.greedy(tensordict)  # an argmax per row: the same for every seed
        if exploration_type() not in (ExplorationType.RANDOM, None):
            return tensordict
        key, mask_key = self.explore[0].action_key, self.explore[0].action_mask_key
        greedy = tensordict.get(key)
        shape = tensordict.get(key[:-1]).shape if isinstance(key, tuple) and len(key) > 1 else tensordict.shape
        mask = tensordict.get(mask_key) if mask_key is not None else None
        actions = []
        for k, explore in enumerate(self.explore):
            rows = slice(k * e, (k + 1) * e)
            with self.rng(k):
                actions.append(_epsilon_greedy(explore, greedy[rows], (e, *shape[1:]),
                                               None if mask is None else mask[rows]))
        tensordict.set(key, torch.cat(actions))
        return tensordict


def _epsilon_greedy(explore: EGreedyModule, action: torch.Tensor, shape: tuple, mask: torch.Tensor | None):
    """``EGreedyModule.forward`` on one seed's rows, on tensors (no tensordict to slice): the same draws in
    the same order (a uniform per ``shape`` entry, then the spec's random actions), so the same actions."""
    cond = expand_as_right(torch.rand(shape, device=explore.eps.device) < explore.eps, action)
    spec = explore.spec
    if isinstance(spec, Composite):
        spec = spec[explore.action_key]
    if spec.shape != action.shape:
        spec = spec.expand(action.shape)
    if mask is not None:
        spec.update_mask(mask)
    return torch.where(cond, spec.rand().to(action.device), action)
