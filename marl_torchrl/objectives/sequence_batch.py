"""What every sequence loss reads from a replayed batch, read once: :class:`SequenceBatch`.

A batch holds ``B`` sequences of ``L`` transitions in ``L + 1`` observation slots (the last slot is the
bootstrap observation). :func:`read_sequence_batch` slices the per-transition entries to ``[:, :L]``,
takes the stored start hidden state for recurrent nets, and builds the mask of transitions that count.

The one burn-in rule, for every loss: with ``burn_in > 0`` and a RECURRENT net (``net.rnn``), the first
``burn_in`` steps of a sequence that starts mid-episode (``is_init`` false at slot 0) only warm up the
hidden state: they get no gradient (:func:`~marl_torchrl.objectives.sequence_ops.unroll_with_burn_in`)
and leave the loss (``valid`` is 0 there). Sequences that start an episode keep every step (their
start state is exactly zero), and feed-forward nets have nothing to warm up, so burn-in never applies.

>>> import torch
>>> from marl_torchrl.data.synthetic import random_sequences
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> td = random_sequences(batch=2, seq_len=3, n_agents=2, obs_dim=4, n_actions=5, state_dim=6, hidden_dim=8)
>>> td["is_init"][1, 0] = False  # the second sequence continues an episode
>>> batch = read_sequence_batch(td, SequenceKeys(), SharedAgentNet(4, 2, 5, hidden_dim=8), burn_in=1)
>>> batch.obs.shape, batch.action.shape, batch.state_next.shape, batch.h0.shape
(torch.Size([2, 4, 2, 4]), torch.Size([2, 3, 2]), torch.Size([2, 3, 6]), torch.Size([2, 2, 8]))
>>> batch.valid.squeeze(-1)
tensor([[1., 1., 1.],
        [0., 1., 1.]])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import nn

from marl_torchrl import keys
from marl_torchrl.registry import ConfigError


@dataclass
class StepKeys:
    """The keys of a collected step that every loss reads (replayed sequences and on-policy rollouts).

    >>> StepKeys().hidden
    ('agents', 'rnn_hidden')
    """

    observation: NestedKey = keys.OBS
    state: NestedKey = keys.STATE
    action: NestedKey = keys.ACTION
    action_mask: NestedKey = keys.ACTION_MASK
    reward: NestedKey = keys.REWARD
    terminated: NestedKey = keys.TERMINATED
    is_init: NestedKey = keys.IS_INIT
    hidden: NestedKey = keys.HIDDEN


@dataclass
class SequenceKeys(StepKeys):
    """The replay keys every sequence loss reads (the steps' and the padding ``mask``); renamable with ``set_keys``.

    >>> SequenceKeys().observation
    ('agents', 'observation')
    """

    mask: NestedKey = keys.MASK


@dataclass
class SequenceBatch:
    """One replayed batch, sliced for the loss. Slots ``[B, L+1, ...]``, transitions ``[B, L, ...]``.

    Attributes:
        obs: observations ``[B, L+1, A, F]`` (all slots).
        state: global state ``[B, L+1, S]`` or None; ``state_now``/``state_next`` are its ``[:, :-1]``
            and ``[:, 1:]`` (None without a state).
        action: replayed actions ``[B, L, A]`` (discrete indices) or ``[B, L, A, d]`` (continuous).
        reward, terminated: ``[B, L, 1]`` floats.
        valid: ``[B, L, 1]`` float mask of the transitions that count (padding and burn-in are 0).
        avail: available actions ``[B, L+1, A, n]`` or None; ``avail_now``/``avail_next`` slice it.
        h0: start hidden state of a recurrent net, or None (feed-forward net, or none stored).
        is_init: ``[B]`` bool, the sequence starts an episode.
        recurrent: the net is recurrent (burn-in applies to it).
    """

    obs: torch.Tensor
    state: torch.Tensor | None
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    valid: torch.Tensor
    avail: torch.Tensor | None
    h0: torch.Tensor | None
    is_init: torch.Tensor
    recurrent: bool

    @property
    def state_now(self) -> torch.Tensor | None:
        return None if self.state is None else self.state[:, :-1]

    @property
    def state_next(self) -> torch.Tensor | None:
        return None if self.state is None else self.state[:, 1:]

    @property
    def avail_now(self) -> torch.Tensor | None:
        return None if self.avail is None else self.avail[:, :-1]

    @property
    def avail_next(self) -> torch.Tensor | None:
        return None if self.avail is None else self.avail[:, 1:]


def is_recurrent(net: nn.Module) -> bool:
    """Whether ``net`` carries a hidden state (``net.rnn``): the one test of the burn-in rule."""
    return bool(getattr(net, "rnn", False))


def drop_burn_in(valid: torch.Tensor, is_init: torch.Tensor, burn_in: int) -> torch.Tensor:
    """Mask ``[B, L, 1]`` without the burn-in steps of sequences that continue an episode.

    >>> drop_burn_in(torch.ones(2, 3, 1), torch.tensor([True, False]), 1).squeeze(-1)
    tensor([[1., 1., 1.],
            [0., 1., 1.]])
    """
    if burn_in == 0:
        return valid
    burn = torch.zeros_like(valid)
    burn[:, :burn_in] = 1.0
    return valid * (1.0 - burn * (~is_init.bool()).float().view(-1, 1, 1))


def read_sequence_batch(
    td: TensorDictBase, k: SequenceKeys, net: nn.Module, *, burn_in: int = 0, action_mask: bool = True
) -> SequenceBatch:
    """Read ``td`` (keys ``k``) for a loss whose recurrent part is ``net``; ``action_mask=False`` ignores masks
    (continuous actions). Applies the module's burn-in rule to ``valid``."""
    recurrent = is_recurrent(net)
    is_init = td.get(k.is_init)[:, 0].reshape(-1)
    valid = drop_burn_in(td.get(k.mask)[:, :-1].float(), is_init, burn_in if recurrent else 0)
    return SequenceBatch(
        obs=td.get(k.observation),
        state=td.get(k.state, None),
        action=td.get(k.action)[:, :-1],
        reward=td.get(k.reward)[:, :-1].float(),
        terminated=td.get(k.terminated)[:, :-1].float(),
        valid=valid,
        avail=td.get(k.action_mask, None) if action_mask else None,
        h0=td.get(k.hidden, None) if recurrent else None,
        is_init=is_init,
        recurrent=recurrent,
    )


class ActionSpace:
    """Mixin of the actor-critic losses: discrete (``n_actions``) or continuous (``bound``) actions, checked.

    >>> class Loss(ActionSpace):
    ...     algorithm = "FACMAC"
    >>> loss = Loss()
    >>> loss.set_action_space(n_actions=4, bound=None); loss.discrete
    True
    >>> loss.set_action_space(n_actions=None, bound=None)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: FACMAC needs either n_actions (discrete) or bound (continuous actions)
    """

    algorithm = "this loss"

    def set_action_space(self, *, n_actions: int | None, bound: nn.Module | None) -> None:
        if (n_actions is None) == (bound is None):
            raise ConfigError(f"{self.algorithm} needs either n_actions (discrete) or bound (continuous actions)")
        self.n_actions, self.bound = n_actions, bound

    @property
    def discrete(self) -> bool:
        return self.n_actions is not None
