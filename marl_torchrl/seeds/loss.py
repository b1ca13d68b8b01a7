"""K value-decomposition losses (one per seed) computed as one: :class:`StackedValueDecompositionLoss`.

The K seeds' batches are folded into one, ``[K * B, L + 1, ...]`` (seed ``k``'s sequences are rows
``k * B ... (k + 1) * B - 1``), so every row-wise step of the loss (reading the batch, burn-in, gathers,
greedy actions, TD(lambda) targets) runs once for all seeds with the package's own functions, while the
networks run as :class:`~marl_torchrl.seeds.agents.StackedAgentNet` and
:class:`~marl_torchrl.seeds.mixers.StackedMixer` (each seed's rows through each seed's weights). Only
the means are per seed: seed ``k``'s loss averages seed ``k``'s valid transitions, exactly as its own
:class:`~marl_torchrl.objectives.value_decomposition.ValueDecompositionLoss` would, so the gradient of
``out["loss"].sum()`` with respect to seed ``k``'s parameters is the gradient of seed ``k``'s own loss.

:meth:`StackedValueDecompositionLoss.forward` follows ``ValueDecompositionLoss.forward`` line by line for
the losses it accepts: IQL, VDN, QMIX and non-monotonic QMIX with GRU or MLP agents, 1-step or TD(lambda)
targets, double Q or not, burn-in, l2 or smooth_l1, reward standardisation (per seed). Weighted QMIX (a
central ``Q*``) and mixers with extra inputs (QPLEX) are refused with a ``ConfigError``.

>>> import torch
>>> from marl_torchrl.data.synthetic import random_sequences
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> from marl_torchrl.modules.mixers import QMixer
>>> from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
>>> losses = [ValueDecompositionLoss(SharedAgentNet(3, 2, 4, hidden_dim=8), QMixer(2, 6), td_lambda=0.6)
...           for _ in range(3)]
>>> batches = [random_sequences(batch=4, seq_len=5, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8)
...            for _ in range(3)]
>>> out = StackedValueDecompositionLoss(losses)(batches)
>>> out["loss"].shape
torch.Size([3])
>>> torch.allclose(out["loss"][1], losses[1](batches[1])["loss"], atol=1e-5)
True
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase

from marl_torchrl.objectives.sequence_batch import read_sequence_batch
from marl_torchrl.objectives.sequence_ops import mix_values, unroll_with_burn_in
from marl_torchrl.objectives.targets import lambda_returns
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.objectives.weighted import greedy_actions
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.agents import StackedAgentNet
from marl_torchrl.seeds.mixers import StackedMixer

__all__ = ["StackedValueDecompositionLoss", "fold_batches", "per_seed_mean", "per_seed_rewards"]

_SHARED = ("gamma", "td_lambda", "reward_scale", "double_q", "burn_in", "loss_function", "skip_unread_steps")


def per_seed_mean(value: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """``[K]``: each seed's ``masked_mean`` over its own rows of folded ``[K * B, ...]`` tensors.

    >>> per_seed_mean(torch.tensor([[1.0], [3.0], [5.0], [7.0]]), torch.tensor([[1.0], [1.0], [0.0], [1.0]]), 2)
    tensor([2., 7.])
    """
    w = valid.expand_as(value)
    return (value * w).reshape(k, -1).sum(1) / w.reshape(k, -1).sum(1).clamp_min(1.0)


def fold_batches(batches: Sequence[TensorDictBase], k: int) -> TensorDictBase:
    """One ``[K * B, ...]`` batch from the K seeds' ``[B, ...]`` batches (seed ``k``'s rows: block ``k``).

    >>> fold_batches([TensorDict({"x": torch.zeros(2, 3)}, [2]), TensorDict({"x": torch.ones(2, 3)}, [2])], 2).shape
    torch.Size([4])
    """
    if len(batches) != k:
        raise ValueError(f"{k} seeds need {k} batches, got {len(batches)}")
    return torch.cat(list(batches), dim=0)


def per_seed_rewards(losses: Sequence, reward: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Folded ``[K * B, ...]`` rewards, each seed's rows through its own loss's ``rewards`` (its own reward
    standardiser: running statistics stay per seed), then scaled by their reward_scale; without standardisers,
    times the shared reward_scale.

    >>> from types import SimpleNamespace
    >>> losses = [SimpleNamespace(reward_norm=1, rewards=lambda r, v, s=s: r * s) for s in (1.0, 10.0)]
    >>> per_seed_rewards(losses, torch.ones(4, 1), torch.ones(4, 1)).flatten().tolist()
    [1.0, 1.0, 10.0, 10.0]
    """
    if losses[0].reward_norm is None:  # stateless: one loss's rewards serve all (its scale is checked shared)
        return losses[0].rewards(reward, valid)
    parts = zip(losses, reward.chunk(len(losses)), valid.chunk(len(losses)))
    return torch.cat([loss.rewards(r, v) for loss, r, v in parts])


class StackedValueDecompositionLoss:
    """The K seeds' losses as one computation; ``forward(batches)`` returns a ``TensorDict`` of batch
    size ``[K]`` with each seed's ``loss`` and diagnostics (the keys of ``ValueDecompositionLoss``).

    It owns nothing: the networks, targets and reward statistics stay in the K losses it reads.
    """

    def __init__(self, losses: Sequence[ValueDecompositionLoss]):
        losses = list(losses)
        if not losses or not all(type(loss) is ValueDecompositionLoss for loss in losses):
            raise ConfigError("stacked seeds need ValueDecompositionLoss losses (IQL, VDN, QMIX, non-monotonic QMIX)")
        first = losses[0]
        if any(loss.central is not None for loss in losses):
            raise ConfigError("stacked seeds cannot stack Weighted QMIX (a central Q*) yet")
        for name in _SHARED:
            if any(getattr(loss, name) != getattr(first, name) for loss in losses):
                raise ConfigError(f"stacked seeds need one configuration: the losses differ in {name}")
        if any(loss.tensor_keys != first.tensor_keys for loss in losses):
            raise ConfigError("stacked seeds need one configuration: the losses read different keys")
        self.losses, self.k = losses, len(losses)
        self.agent_net = StackedAgentNet([loss.agent_net for loss in losses])
        self.agent_net_target = StackedAgentNet([loss.agent_net_target for loss in losses])
        self.mixer = None if first.mixer is None else StackedMixer([loss.mixer for loss in losses])
        self.mixer_target = None if first.mixer is None else StackedMixer([loss.mixer_target for loss in losses])

    def fold(self, batches: Sequence[TensorDictBase]) -> TensorDictBase:
        """One ``[K * B]`` batch from the K seeds' ``[B]`` batches (same ``B`` and sequence length)."""
        return fold_batches(batches, self.k)

    def _rewards(self, reward: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return per_seed_rewards(self.losses, reward, valid)

    def __call__(self, batches: Sequence[TensorDictBase]) -> TensorDict:
        return self.forward(batches)

    def forward(self, batches: Sequence[TensorDictBase]) -> TensorDict:
        first, k = self.losses[0], self.k
        td = self.fold(batches)
        b = read_sequence_batch(td, first.tensor_keys, self.agent_net, burn_in=first.burn_in)
        b.reward = self._rewards(b.reward, b.valid)  # each seed's own standardiser, if any
        obs, state, h0, valid = b.obs, b.state, b.h0, b.valid
        action = b.action.unsqueeze(-1)  # [K * B, L, A, 1]
        if self.mixer is not None and self.mixer.needs_state and state is None:
            raise KeyError(f"the mixer needs a state but the batch has no '{first.tensor_keys.state}' entry")

        skip = first.skip_unread_steps  # the steps nobody reads, as ValueDecompositionLoss skips them
        full = b.recurrent or not skip
        q_all = unroll_with_burn_in(self.agent_net, obs if first.double_q or not skip else obs[:, :-1], h0,
                                    first.burn_in, b.is_init)
        q_now = q_all[:, : obs.shape[1] - 1]
        with torch.no_grad():
            q_next_target = self.agent_net_target.unroll(obs, h0)[0][:, 1:] if full else \
                self.agent_net_target.unroll(obs[:, 1:])[0]

        chosen = q_now.gather(-1, action)
        q_taken = mix_values(self.mixer, chosen, b.state_now)
        with torch.no_grad():
            next_q = q_all.detach()[:, 1:] if first.double_q else q_next_target
            next_action = greedy_actions(next_q, b.avail_next)
            next_value = mix_values(self.mixer_target, q_next_target.gather(-1, next_action), b.state_next)
            target = lambda_returns(b.reward, b.terminated, valid, next_value, gamma=first.gamma, lam=first.td_lambda)

        err = q_taken - target
        per = err.pow(2) if first.loss_function == "l2" else F.smooth_l1_loss(q_taken, target, reduction="none")
        return TensorDict(
            {
                "loss": per_seed_mean(per, valid, k),
                "td_error": per_seed_mean(err.abs(), valid, k).detach(),
                "q_value": per_seed_mean(q_taken, valid, k).detach(),
                "agent_q_value": per_seed_mean(chosen.squeeze(-1), valid, k).detach(),
                "target_value": per_seed_mean(target, valid, k).detach(),
            },
            batch_size=[k],
        )
