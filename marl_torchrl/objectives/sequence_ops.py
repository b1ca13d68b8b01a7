"""Small operations every sequence loss shares: unrolls with burn-in, mixing, masked means, and
calling a module with detached parameters (so that a loss term sends gradient through a network
into its inputs without training that network).

>>> import torch
>>> masked_mean(torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [0.0]]))
tensor(1.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict.utils import NestedKey
from torch import nn
from torch.func import functional_call
from torchrl.objectives import LossModule

from marl_torchrl import keys
from marl_torchrl.registry import ConfigError


@dataclass
class SequenceKeys:
    """The replay keys every sequence loss reads; a loss renames them with ``set_keys``.

    >>> SequenceKeys().observation
    ('agents', 'observation')
    """

    observation: NestedKey = keys.OBS
    state: NestedKey = keys.STATE
    action: NestedKey = keys.ACTION
    action_mask: NestedKey = keys.ACTION_MASK
    reward: NestedKey = keys.REWARD
    terminated: NestedKey = keys.TERMINATED
    mask: NestedKey = keys.MASK
    is_init: NestedKey = keys.IS_INIT
    hidden: NestedKey = keys.HIDDEN


class SequenceLoss(LossModule):
    """Base of the sequence losses: the renamable :class:`SequenceKeys`, the checked discount,
    TD(lambda) and burn-in, and no torchrl value estimator (targets are computed in ``forward``).

    >>> SequenceLoss(gamma=0.9, td_lambda=0.5).gamma
    0.9
    >>> SequenceLoss(gamma=1.5)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: gamma must be in (0, 1], got 1.5
    """

    _AcceptedKeys = SequenceKeys
    default_keys = SequenceKeys
    tensor_keys: SequenceKeys

    def __init__(self, *, gamma: float = 0.99, td_lambda: float = 0.0, burn_in: int = 0):
        super().__init__()
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {gamma}")
        if not 0.0 <= td_lambda <= 1.0:
            raise ConfigError(f"td_lambda must be in [0, 1], got {td_lambda}")
        self.gamma, self.td_lambda, self.burn_in = float(gamma), float(td_lambda), int(burn_in)

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass  # targets are computed in forward, not by a torchrl value estimator


def unroll_with_burn_in(net: nn.Module, obs: torch.Tensor, h0, burn_in: int) -> torch.Tensor:
    """``net.unroll`` over ``[B, T, A, F]``; the first ``burn_in`` steps of a recurrent net get no gradient.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> net = SharedAgentNet(3, 2, 4, hidden_dim=8)
    >>> out = unroll_with_burn_in(net, torch.randn(5, 6, 2, 3), None, burn_in=2)
    >>> out.shape
    torch.Size([5, 6, 2, 4])
    >>> bool(torch.autograd.grad(out[:, :2].sum(), net.head.weight)[0].eq(0).all())  # burn-in: no gradient
    True
    """
    if burn_in == 0 or not getattr(net, "rnn", False):
        return net.unroll(obs, h0)[0]
    with torch.no_grad():
        pre, h_b = net.unroll(obs[:, :burn_in], h0)
    post, _ = net.unroll(obs[:, burn_in:], h_b)
    return torch.cat([pre.detach(), post], dim=1)


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


def mix_values(mixer, chosen: torch.Tensor, state: torch.Tensor | None, *, detached: bool = False) -> torch.Tensor:
    """``[B, L, A, 1] -> [B, L, 1]`` through the mixer, or ``[B, L, A]`` without one (independent).

    With ``detached=True`` the mixer's parameters get no gradient (see :func:`call_detached`).

    >>> from torchrl.modules.models.multiagent import VDNMixer
    >>> mix_values(VDNMixer(2, device="cpu"), torch.ones(3, 4, 2, 1), None).shape
    torch.Size([3, 4, 1])
    """
    if mixer is None:
        return chosen.squeeze(-1)
    call = (lambda *args: call_detached(mixer, *args)) if detached else mixer
    if getattr(mixer, "needs_state", True):
        if state is None:
            raise KeyError("the mixer needs a state but the batch has none")
        return call(chosen, state.contiguous())
    return call(chosen)


def masked_mean(value: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over valid entries; ``valid`` broadcasts to ``value`` (e.g. ``[B, L, 1]``)."""
    w = valid.expand_as(value)
    return (value * w).sum() / w.sum().clamp_min(1.0)


def call_detached(module: nn.Module | None, *args):
    """``module(*args)`` with its parameters detached: gradient reaches ``args`` but not the module.

    >>> lin = nn.Linear(2, 1)
    >>> x = torch.ones(1, 2, requires_grad=True)
    >>> call_detached(lin, x).sum().backward()
    >>> lin.weight.grad is None, x.grad is not None
    (True, True)
    """
    if not any(True for _ in module.parameters()):
        return module(*args)
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, args)
