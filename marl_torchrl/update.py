"""One gradient step of an algorithm's parts: loss -> backward -> clip -> optimisers -> target update.

Each optimiser trains the parameters of its own loss term; its gradient norm is clipped on its own.
The terms are summed and back-propagated once, so a term must not send gradient into parameters that
another term's optimiser owns (FACMAC's actor loss calls its critic with detached parameters).

>>> from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
>>> from marl_torchrl.envs import EnvSpecInfo
>>> from marl_torchrl.data.synthetic import random_sequences
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
>>> from marl_torchrl.config import ModelConfig, ValueDecompositionConfig
>>> cfg = ValueDecompositionConfig(name="qmix", mixer="qmix", target_hard_interval=None, target_tau=0.01)
>>> parts = build_value_decomposition(cfg, ModelConfig(hidden_dim=8), info, "cpu", total_frames=100)
>>> batch = random_sequences(batch=4, seq_len=5, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8)
>>> sorted(gradient_step(parts, batch))
['agent_q_value', 'grads', 'loss', 'q_value', 'target_value', 'td_error']
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from marl_torchrl.algorithms.base import AlgorithmParts


def gradient_step(parts: AlgorithmParts, batch: TensorDictBase) -> dict[str, torch.Tensor]:
    """Apply one update; return the loss output's scalars (and the gradient norm) as detached 0-d
    tensors on the training device, read by the caller once per iteration.

    A non-finite loss or gradient norm is never applied: the gradients are dropped, no optimiser or
    target network moves, and the logs hold ``skipped`` (1) and ``nonfinite`` (the metric's name). That
    check reads one flag from the device per update."""
    out = parts.loss(batch)
    for opt in parts.optimizers.values():
        opt.zero_grad(set_to_none=True)
    total = sum(out.get(term) for term in parts.optimizers)
    total.backward()
    grad_norms = []
    for opt in parts.optimizers.values():
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        clip = parts.grad_clip if parts.grad_clip is not None else float("inf")
        grad_norms.append(torch.nn.utils.clip_grad_norm_(params, clip))
    logs = {k: v.detach().reshape(()) for k, v in out.items() if v.numel() == 1}
    logs.setdefault("loss", total.detach())  # losses with several terms log their sum as train/loss
    logs["grads"] = torch.stack(grad_norms).sum().detach()
    finite = torch.stack([torch.isfinite(total.detach()), torch.isfinite(logs["grads"])])
    if not bool(finite.all()):
        for opt in parts.optimizers.values():
            opt.zero_grad(set_to_none=True)
        return {**logs, "skipped": torch.ones(()), "nonfinite": "loss" if not bool(finite[0]) else "grads"}
    for opt in parts.optimizers.values():
        opt.step()
    parts.target_updater.step()
    return logs


def nonfinite_parameter(module: torch.nn.Module) -> str | None:
    """The name of the first parameter or buffer of ``module`` holding a NaN or an infinity, or None
    (one device read when all are finite).

    >>> lin = torch.nn.Linear(2, 1)
    >>> nonfinite_parameter(lin) is None
    True
    >>> with torch.no_grad():
    ...     _ = lin.bias.fill_(float("nan"))
    >>> nonfinite_parameter(lin)
    'bias'
    """
    named = [(n, t) for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_floating_point()]
    if not named or bool(torch.stack([torch.isfinite(t).all() for _, t in named]).all()):
        return None
    return next(n for n, t in named if not bool(torch.isfinite(t).all()))


def mean_logs(logs: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Average each scalar over a list of :func:`gradient_step` outputs (one device read per name).

    >>> mean_logs([{"loss": torch.tensor(1.0)}, {"loss": torch.tensor(3.0)}])
    {'loss': 2.0}
    """
    logs = [d for d in logs if "skipped" not in d]  # skipped (non-finite) updates were not applied
    if not logs:
        return {}
    return {name: torch.stack([d[name].float() for d in logs]).mean().item() for name in logs[0]}
