"""Bootstrapped targets over sequences, and target-network updates.

:func:`lambda_returns` computes TD(lambda) targets over a padded sequence (lambda = 0 gives the 1-step
target). :class:`TargetUpdater` copies online weights into target networks, either hard every N updates
or by Polyak averaging; it is configured with exactly one of the two keys.

>>> import torch
>>> r = torch.tensor([[[1.0], [1.0], [0.0]]])          # [B=1, L=3, 1]
>>> term = torch.tensor([[[0.0], [1.0], [0.0]]])
>>> valid = torch.tensor([[[1.0], [1.0], [0.0]]])
>>> next_v = torch.full((1, 3, 1), 10.0)
>>> lambda_returns(r, term, valid, next_v, gamma=0.5, lam=0.0)[0, :2, 0].tolist()
[6.0, 1.0]
"""
from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn

from marl_torchrl.registry import ConfigError


def lambda_returns(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    valid: torch.Tensor,
    next_value: torch.Tensor,
    *,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """TD(lambda) targets ``G_t`` for every step of ``[B, L, X]`` sequences.

    ``G_t = r_t + gamma * (1 - term_t) * ((1 - lam) * V_{t+1} + lam * G_{t+1})``, where ``V_{t+1}`` is
    ``next_value[:, t]`` (the target network's value of the next observation) and ``G_{t+1}`` is
    replaced by ``V_{t+1}`` where step ``t + 1`` is not a valid transition (padding, the end of a
    truncated episode, or the end of the sequence): a truncated step bootstraps, a terminated one does
    not. ``reward``, ``terminated`` and ``valid`` are ``[B, L, 1]`` and broadcast over ``X``.
    """
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"td_lambda must be in [0, 1], got {lam}")
    not_term = 1.0 - terminated.to(next_value.dtype)
    one_step = reward + gamma * not_term * next_value
    if lam == 0.0:
        return one_step
    valid_next = torch.zeros_like(valid, dtype=next_value.dtype)
    valid_next[:, :-1] = valid[:, 1:].to(next_value.dtype)
    out = torch.empty_like(one_step)
    g_next = next_value[:, -1]
    for t in range(reward.shape[1] - 1, -1, -1):
        tail = valid_next[:, t] * g_next + (1.0 - valid_next[:, t]) * next_value[:, t]
        g = reward[:, t] + gamma * not_term[:, t] * ((1.0 - lam) * next_value[:, t] + lam * tail)
        out[:, t] = g
        g_next = g
    return out


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with ``requires_grad=False``, used as a target network.

    >>> frozen_copy(nn.Linear(2, 2)).weight.requires_grad
    False
    """
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


class TargetUpdater:
    """Keeps target networks in step with online ones: hard copies or Polyak averaging.

    Args:
        pairs: ``(online, target)`` module pairs.
        hard_interval: copy the weights every this many calls to :meth:`step` (updates).
        tau: Polyak coefficient, ``target <- (1 - tau) * target + tau * online`` at every call (parameters;
            buffers, such as running input statistics, are copied as a hard update copies them).

    Exactly one of ``hard_interval`` and ``tau`` must be given, or neither when there are no pairs (a
    loss without target networks, such as PQN's): then ``step`` only counts.

    >>> online, target = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> up = TargetUpdater([(online, target)], hard_interval=2)
    >>> up.step(); bool(torch.equal(online.weight, target.weight))
    False
    >>> up.step(); bool(torch.equal(online.weight, target.weight))
    True
    >>> TargetUpdater([]).step()  # no target networks, no schedule needed
    >>> TargetUpdater([(online, target)])
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: set exactly one of target_hard_interval (hard copies) and target_tau (Polyak), got hard_interval=None, tau=None
    """

    def __init__(self, pairs: Iterable[tuple[nn.Module, nn.Module]], *, hard_interval=None, tau=None):
        pairs = list(pairs)
        if (hard_interval is None) == (tau is None) and (pairs or tau is not None):
            raise ConfigError(
                "set exactly one of target_hard_interval (hard copies) and target_tau (Polyak), "
                f"got hard_interval={hard_interval}, tau={tau}"
            )
        if hard_interval is not None and int(hard_interval) < 1:
            raise ConfigError(f"target_hard_interval must be >= 1, got {hard_interval}")
        if tau is not None and not 0.0 < float(tau) <= 1.0:
            raise ConfigError(f"target_tau must be in (0, 1], got {tau}")
        self.pairs = pairs
        self.hard_interval = None if hard_interval is None else int(hard_interval)
        self.tau = None if tau is None else float(tau)
        self.num_steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self.num_steps += 1
        if self.tau is not None:
            for online, target in self.pairs:
                for p, tp in zip(online.parameters(), target.parameters()):
                    tp.lerp_(p, self.tau)
                for b, tb in zip(online.buffers(), target.buffers()):  # statistics (running input norms) copied
                    tb.copy_(b)
        elif self.hard_interval is not None and self.num_steps % self.hard_interval == 0:
            for online, target in self.pairs:
                target.load_state_dict(online.state_dict())

    def state_dict(self) -> dict:
        return {"num_steps": self.num_steps}

    def load_state_dict(self, state: dict) -> None:
        self.num_steps = int(state["num_steps"])
