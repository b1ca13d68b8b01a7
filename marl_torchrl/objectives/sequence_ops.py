"""The skeleton every sequence loss shares: :class:`SequenceLoss` (keys, discount, reading the batch with
one burn-in rule, target networks from declared names, the mixer-input check), unrolls with burn-in,
mixing, masked means, and calling a module with detached parameters (so that a loss term sends gradient
through a network into its inputs without training that network).

>>> import torch
>>> masked_mean(torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [0.0]]))
tensor(1.)
"""
from __future__ import annotations

from typing import Iterable

import torch
from tensordict import TensorDictBase
from torch import nn
from torch.func import functional_call
from torchrl.objectives import LossModule

from marl_torchrl.modules.mixers.base import requested_inputs
from marl_torchrl.objectives.reward_norm import RewardStandardiser
from marl_torchrl.objectives.sequence_batch import SequenceBatch, SequenceKeys, drop_burn_in, read_sequence_batch
from marl_torchrl.objectives.targets import frozen_copy
from marl_torchrl.registry import ConfigError

__all__ = ["SequenceLoss", "SequenceKeys", "SequenceBatch", "drop_burn_in", "unroll_with_burn_in", "mix_values",
           "masked_mean", "call_detached"]


class SequenceLoss(LossModule):
    """Base of the sequence losses: the renamable :class:`SequenceKeys`, the checked discount,
    TD(lambda) and burn-in, and no torchrl value estimator (targets are computed in ``forward``).

    A subclass declares ``target_names``, ``(online attribute, target attribute)`` pairs: after setting
    the online modules it calls :meth:`make_targets` (frozen copies; None where the online one is None),
    and :meth:`target_pairs` lists the pairs for a :class:`~marl_torchrl.objectives.targets.TargetUpdater`.
    :meth:`read_batch` reads a replayed batch into a :class:`SequenceBatch` with the one burn-in rule.

    >>> class Loss(SequenceLoss):
    ...     target_names = (("net", "net_target"), ("mixer", "mixer_target"))
    >>> loss = Loss(gamma=0.9, td_lambda=0.5)
    >>> loss.net, loss.mixer = nn.Linear(2, 2), None
    >>> loss.make_targets()
    >>> [type(o).__name__ for o, t in loss.target_pairs()], loss.mixer_target, loss.gamma
    (['Linear'], None, 0.9)
    >>> SequenceLoss(gamma=1.5)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: gamma must be in (0, 1], got 1.5
    """

    _AcceptedKeys = SequenceKeys
    default_keys = SequenceKeys
    tensor_keys: SequenceKeys
    target_names: tuple[tuple[str, str], ...] = ()
    algorithm = "this loss"

    def __init__(self, *, gamma: float = 0.99, td_lambda: float = 0.0, burn_in: int = 0,
                 standardise_rewards: bool = False, reward_scale: float = 1.0):
        super().__init__()
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {gamma}")
        if not 0.0 <= td_lambda <= 1.0:
            raise ConfigError(f"td_lambda must be in [0, 1], got {td_lambda}")
        if not reward_scale > 0:
            raise ConfigError(f"reward_scale must be > 0, got {reward_scale}")
        self.reward_scale = float(reward_scale)
        self.gamma, self.td_lambda, self.burn_in = float(gamma), float(td_lambda), int(burn_in)
        self.reward_norm = RewardStandardiser() if standardise_rewards else None

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass  # targets are computed in forward, not by a torchrl value estimator

    def make_targets(self) -> None:
        """Set every declared target attribute to a frozen copy of its online module (or None)."""
        for online, target in self.target_names:
            module = getattr(self, online)
            setattr(self, target, None if module is None else frozen_copy(module))

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, target)`` pairs for a :class:`~marl_torchrl.objectives.targets.TargetUpdater`."""
        pairs = [(getattr(self, online), getattr(self, target)) for online, target in self.target_names]
        return [(o, t) for o, t in pairs if o is not None]

    def read_batch(self, td: TensorDictBase, net: nn.Module, *, action_mask: bool = True) -> SequenceBatch:
        """The batch as the loss reads it; ``net`` is the recurrent part that decides the burn-in rule.
        With ``standardise_rewards`` its rewards are standardised (:meth:`rewards`)."""
        b = read_sequence_batch(td, self.tensor_keys, net, burn_in=self.burn_in, action_mask=action_mask)
        b.reward = self.rewards(b.reward, b.valid)
        return b

    def rewards(self, reward: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``reward`` as the loss trains on it: standardised by the running statistics of every reward
        trained on so far (updated here; unchanged without ``standardise_rewards``), then multiplied by
        ``reward_scale``."""
        reward = reward if self.reward_norm is None else self.reward_norm(reward, valid)
        return reward if self.reward_scale == 1.0 else reward * self.reward_scale

    def check_mixer_inputs(self, mixer, provided: Iterable[str]) -> None:
        """A one-line ``ConfigError`` if ``mixer`` asks for an input this loss cannot give."""
        provided = set(provided)
        for name in requested_inputs(mixer):
            if name not in provided:
                raise ConfigError(f"{self.algorithm} cannot give mixer {type(mixer).__name__} its '{name}' input; "
                                  f"it gives: {', '.join(sorted(provided)) or 'none'}")


def unroll_with_burn_in(net: nn.Module, obs: torch.Tensor, h0, burn_in: int,
                        is_init: torch.Tensor | None = None) -> torch.Tensor:
    """``net.unroll`` over ``[B, T, A, F]``; the first ``burn_in`` steps of a recurrent net pass no gradient
    in the sequences that continue an episode (``is_init`` ``[B]`` false; None: every sequence). Sequences
    that start an episode keep their gradient: they need no warm-up.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> net = SharedAgentNet(3, 2, 4, hidden_dim=8)
    >>> out = unroll_with_burn_in(net, torch.randn(5, 6, 2, 3), None, burn_in=2)
    >>> out.shape
    torch.Size([5, 6, 2, 4])
    >>> bool(torch.autograd.grad(out[:, :2].sum(), net.head.weight)[0].eq(0).all())  # burn-in: no gradient
    True
    >>> out = unroll_with_burn_in(net, torch.randn(5, 6, 2, 3), None, 2, is_init=torch.tensor([True] + [False] * 4))
    >>> bool(torch.autograd.grad(out[0, :2].sum(), net.head.weight)[0].ne(0).any())  # an episode start keeps it
    True
    """
    if burn_in == 0 or not getattr(net, "rnn", False):
        return net.unroll(obs, h0)[0]
    if is_init is None or not bool(is_init.any()):
        with torch.no_grad():
            pre, h_b = net.unroll(obs[:, :burn_in], h0)
    else:
        pre, h_b = net.unroll(obs[:, :burn_in], h0)
        keep = is_init.bool()
        pre = torch.where(keep.view(-1, *[1] * (pre.dim() - 1)), pre, pre.detach())
        h_b = torch.where(keep.view(-1, *[1] * (h_b.dim() - 1)), h_b, h_b.detach())
    post, _ = net.unroll(obs[:, burn_in:], h_b)
    return torch.cat([pre.detach() if is_init is None else pre, post], dim=1)


def mix_values(mixer, chosen: torch.Tensor, state: torch.Tensor | None, *, detached: bool = False,
               **inputs) -> torch.Tensor:
    """``[B, L, A, 1] -> [B, L, 1]`` through the mixer, or ``[B, L, A]`` without one (independent).

    ``inputs`` are the extra inputs the loss can give (names of
    :data:`~marl_torchrl.modules.mixers.base.MIXER_INPUTS`); the mixer gets exactly those it declares
    in ``extra_inputs``, as keywords. With ``detached=True`` its parameters get no gradient
    (see :func:`call_detached`).

    >>> from torchrl.modules.models.multiagent import VDNMixer
    >>> mix_values(VDNMixer(2, device="cpu"), torch.ones(3, 4, 2, 1), None, actions=torch.zeros(3, 4, 2, 1)).shape
    torch.Size([3, 4, 1])
    """
    if mixer is None:
        return chosen.squeeze(-1)
    extras = {}
    for name in requested_inputs(mixer):
        if name not in inputs:
            raise KeyError(f"mixer {type(mixer).__name__} needs '{name}' but the loss gave none")
        extras[name] = inputs[name]
    args = (chosen,)
    if getattr(mixer, "needs_state", True):
        if state is None:
            raise KeyError("the mixer needs a state but the batch has none")
        args = (chosen, state.contiguous())
    return call_detached(mixer, *args, **extras) if detached else mixer(*args, **extras)


def masked_mean(value: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over valid entries; ``valid`` broadcasts to ``value`` (e.g. ``[B, L, 1]``)."""
    w = valid.expand_as(value)
    return (value * w).sum() / w.sum().clamp_min(1.0)


def call_detached(module: nn.Module | None, *args, **kwargs):
    """``module(*args, **kwargs)`` with its parameters detached: gradient reaches the inputs but not the module.

    >>> lin = nn.Linear(2, 1)
    >>> x = torch.ones(1, 2, requires_grad=True)
    >>> call_detached(lin, x).sum().backward()
    >>> lin.weight.grad is None, x.grad is not None
    (True, True)
    """
    if not any(True for _ in module.parameters()):
        return module(*args, **kwargs)
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, args, kwargs)
