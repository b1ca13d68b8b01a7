"""SAC's entropy temperature for the stochastic-actor losses (DOP-SAC, FACMAC with ``stochastic_actor``).

:func:`add_temperature` gives a loss module ``log_alpha`` (a parameter when learned, else a buffer),
``learn_alpha`` and ``target_entropy`` (per agent); :func:`temperature_loss` is the term that moves
``alpha`` so that the policy's entropy approaches the target.

>>> import torch
>>> from torch import nn
>>> loss = nn.Module()
>>> add_temperature(loss, alpha_init=0.1, learn_alpha=True, target_entropy=None, n_actions=4)
>>> round(float(loss.log_alpha.exp()), 3), round(loss.target_entropy, 3)
(0.1, 0.693)
>>> log_pi = torch.full((2, 3, 2), -2.0)  # [B, L, A]: entropy 2 per agent, above the target
>>> temperature_loss(loss, log_pi, torch.ones(2, 3, 1)).backward()
>>> bool(loss.log_alpha.grad > 0)  # gradient descent lowers alpha: less weight on entropy
True
"""
from __future__ import annotations

import math

import torch
from torch import nn

from marl_torchrl.objectives.sequence_ops import masked_mean
from marl_torchrl.registry import ConfigError


def add_temperature(loss: nn.Module, *, alpha_init: float, learn_alpha: bool, target_entropy: float | None,
                    n_actions: int | None = None, action_dim: int | None = None) -> None:
    """Register ``log_alpha`` on ``loss`` with ``learn_alpha`` and ``target_entropy`` (None: ``0.5 log n``
    for ``n_actions`` discrete actions, ``-action_dim`` for continuous ones)."""
    if not float(alpha_init) > 0:
        raise ConfigError(f"{getattr(loss, 'algorithm', 'the loss')}'s temperature alpha_init must be > 0, got {alpha_init}")
    log_alpha = torch.tensor(math.log(float(alpha_init)))
    if learn_alpha:
        loss.log_alpha = nn.Parameter(log_alpha)
    else:
        loss.register_buffer("log_alpha", log_alpha)
    if target_entropy is None:
        target_entropy = 0.5 * math.log(n_actions) if n_actions is not None else -float(action_dim)
    loss.learn_alpha, loss.target_entropy = bool(learn_alpha), float(target_entropy)


def temperature_loss(loss: nn.Module, log_pi: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``-log_alpha * (E[log pi] + target_entropy)`` over valid steps (``log_pi`` per agent, detached
    here); a detached zero when the temperature is fixed."""
    term = -(loss.log_alpha * masked_mean(log_pi.detach() + loss.target_entropy, valid))
    return term if loss.learn_alpha else term.detach() * 0.0
