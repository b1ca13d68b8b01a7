"""K PQN losses (one per seed) computed as one: :class:`StackedPQNLoss`.

Each seed's minibatch (``E`` whole env rows of its own last rollout, ``[E, T]``, drawn by its own
:class:`~marl_torchrl.data.paths.RolloutPath` on its own random stream) is folded into one ``[K * E, T]``
batch, seed ``k``'s rows being rows ``k * E ... (k + 1) * E - 1``. Everything of
:class:`~marl_torchrl.objectives.pqn.PQNLoss` is row-wise except its networks, so the stacked loss runs
``PQNLoss``'s own methods (:meth:`~PQNLoss.step_values`: the reset-aware unroll that also scores each
step's next observation, greedy next actions, the mixer, the reward scale, the Q(lambda) recursion with
terminated steps not bootstrapping and truncated ones bootstrapping from their final observation) on the
folded batch, with the K seeds' agent networks as one
:class:`~marl_torchrl.seeds.agents.StackedAgentNet` (its LayerNorms, input normalisation included, per
seed: each row's statistics, each seed's affine parameters) and their mixers as one
:class:`~marl_torchrl.seeds.mixers.StackedMixer`. The targets come from each seed's own online network
over its own rows (PQN has no target network), rewards go through each seed's own standardiser, and the
loss and diagnostics are means per seed: the gradient of ``out["loss"].sum()`` with respect to seed
``k``'s parameters is that of seed ``k``'s own loss.

>>> import torch
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> from marl_torchrl.modules.mixers import QMixer
>>> from marl_torchrl.objectives.pqn import PQNLoss, random_rollout
>>> losses = [PQNLoss(SharedAgentNet(3, 2, 4, hidden_dim=8, layer_norm=True, input_norm="layer"), QMixer(2, 6),
...                   gamma=0.9, td_lambda=0.8, reward_scale=10.0) for _ in range(3)]
>>> batches = [random_rollout(envs=4, steps=5, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8)
...            for _ in range(3)]
>>> out = StackedPQNLoss(losses)(batches)
>>> out["loss"].shape
torch.Size([3])
>>> torch.allclose(out["loss"][2], losses[2](batches[2])["loss"], rtol=1e-5)
True
"""
from __future__ import annotations

from typing import Sequence

import torch
from tensordict import TensorDict, TensorDictBase

from marl_torchrl.objectives.pqn import PQNLoss, loss_terms
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.agents import StackedAgentNet
from marl_torchrl.seeds.loss import fold_batches, per_seed_rewards
from marl_torchrl.seeds.mixers import StackedMixer

__all__ = ["StackedPQNLoss"]

_SHARED = ("gamma", "td_lambda", "reward_scale")


class StackedPQNLoss:
    """The K seeds' PQN losses as one computation; ``forward(batches)`` returns a ``TensorDict`` of batch size
    ``[K]`` with each seed's ``loss`` and diagnostics (the keys of ``PQNLoss``).

    It owns nothing: the networks and reward statistics stay in the K losses it reads. ``PQNLoss``'s
    methods run on it as they are (it offers the attributes they read: ``tensor_keys``, ``agent_net``,
    ``mixer``, ``gamma``, ``td_lambda``, ``reward_scale`` and ``rewards``).
    """

    rollout_values = PQNLoss.rollout_values
    targets = PQNLoss.targets
    step_values = PQNLoss.step_values

    def __init__(self, losses: Sequence[PQNLoss]):
        losses = list(losses)
        if not losses or not all(type(loss) is PQNLoss for loss in losses):
            raise ConfigError("stacked seeds need PQNLoss losses of one kind (pqn_iql, pqn_vdn, pqn_qmix)")
        first = losses[0]
        for name in _SHARED:
            if any(getattr(loss, name) != getattr(first, name) for loss in losses):
                raise ConfigError(f"stacked seeds need one configuration: the losses differ in {name}")
        if any((loss.reward_norm is None) != (first.reward_norm is None) for loss in losses):
            raise ConfigError("stacked seeds need one configuration: the losses differ in standardise_rewards")
        if any(loss.tensor_keys != first.tensor_keys for loss in losses):
            raise ConfigError("stacked seeds need one configuration: the losses read different keys")
        self.losses, self.k = losses, len(losses)
        self.tensor_keys = first.tensor_keys
        self.gamma, self.td_lambda, self.reward_scale = first.gamma, first.td_lambda, first.reward_scale
        self.agent_net = StackedAgentNet([loss.agent_net for loss in losses])
        self.mixer = None if first.mixer is None else StackedMixer([loss.mixer for loss in losses])

    def rewards(self, reward: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Each seed's rows of folded rewards through its own loss's standardiser (if any)."""
        return per_seed_rewards(self.losses, reward, valid)

    def _mean(self, value: torch.Tensor) -> torch.Tensor:
        """``[K]``: the mean over each seed's own rows of a folded ``[K * E, ...]`` tensor."""
        return value.reshape(self.k, -1).mean(1)

    def __call__(self, batches: Sequence[TensorDictBase]) -> TensorDict:
        return self.forward(batches)

    def forward(self, batches: Sequence[TensorDictBase]) -> TensorDict:
        td = fold_batches(batches, self.k)
        return TensorDict(loss_terms(*self.step_values(td), self._mean), batch_size=[self.k])
