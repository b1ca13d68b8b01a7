"""K independent learners (seeds) trained in one process as one batched computation: :class:`StackedLearners`.

Each seed keeps everything a single run has, built the same way: its own
:class:`~marl_torchrl.algorithms.base.AlgorithmParts` (networks, target networks, optimiser with its own
state and step count, target updater, exploration schedule). Only the loss's forward and backward are
shared: :class:`~marl_torchrl.seeds.loss.StackedValueDecompositionLoss` (or, for PQN,
:class:`~marl_torchrl.seeds.pqn_loss.StackedPQNLoss`) computes all K losses at once
and one backward of their sum gives every seed exactly the gradient of its own loss (the seeds share
no parameter). Then, as :func:`~marl_torchrl.update.gradient_step` does for one: the gradient norm over
each seed's own parameters is clipped (:func:`clip_per_seed`, all seeds in one go), a seed whose loss or
gradient norm is not finite is skipped (its parameters, optimiser state and target counter do not move;
the others step), and every other seed's optimiser steps and its target networks update.

So seed ``s`` inside a K-stack, given the batches seed ``s`` gets alone, follows the single run to float
rounding (the stacked kernels add in another order), and :meth:`StackedLearners.build` seeds torch with
``seed`` before building each seed's parts, as a single run builds its own. A process that trains stacked
seeds should call :func:`~marl_torchrl.seeds.memory.keep_freed_memory` once (their big tensors otherwise
page-fault at every step). Findings and measurements: ``docs/stacked_seeds.md``.

>>> import torch
>>> from marl_torchrl.config import ModelConfig, ValueDecompositionConfig
>>> from marl_torchrl.data.synthetic import random_sequences
>>> from marl_torchrl.envs import EnvSpecInfo
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
>>> cfg = ValueDecompositionConfig(name="qmix", mixer="qmix")
>>> learners = StackedLearners.build([0, 1, 2], cfg, ModelConfig(hidden_dim=8), info, "cpu", total_frames=1000)
>>> batches = [random_sequences(batch=4, seq_len=5, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8)
...            for _ in range(3)]
>>> logs = learners.step(batches)
>>> len(logs), sorted(logs[0])
(3, ['agent_q_value', 'grads', 'loss', 'q_value', 'target_value', 'td_error'])
>>> batches[1]["reward"][0, 0] = float("nan")           # seed 1's loss is not finite: seed 1 skips
>>> [log.get("skipped") is not None for log in learners.step(batches)]
[False, True, False]
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from tensordict import TensorDictBase

from marl_torchrl.algorithms.base import AlgorithmParts
from marl_torchrl.config import schema_name
from marl_torchrl.objectives.pqn import PQNLoss
from marl_torchrl.registry import ALGORITHMS, ConfigError
from marl_torchrl.seeds.loss import StackedValueDecompositionLoss
from marl_torchrl.seeds.pqn_loss import StackedPQNLoss

__all__ = ["StackedLearners", "clip_per_seed", "stacked_loss"]


def stacked_loss(losses: Sequence) -> StackedValueDecompositionLoss | StackedPQNLoss:
    """The K seeds' losses as one: :class:`StackedPQNLoss` for PQN, else :class:`StackedValueDecompositionLoss`
    (which refuses, in one line, what it cannot stack).

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> type(stacked_loss([PQNLoss(SharedAgentNet(3, 2, 4), None) for _ in range(2)])).__name__
    'StackedPQNLoss'
    """
    if any(isinstance(loss, PQNLoss) for loss in losses):
        return StackedPQNLoss(losses)
    return StackedValueDecompositionLoss(losses)


def clip_per_seed(parts: Sequence[AlgorithmParts]) -> torch.Tensor:
    """``[K]``: each seed's gradient norm over its own parameters, after clipping each seed's gradients in
    place to its own ``grad_clip`` (never across seeds), for all seeds at once: one foreach norm over every
    seed's gradients, one norm per seed's row of them, one foreach multiply by each seed's clip factor.
    The numbers are ``torch.nn.utils.clip_grad_norm_``'s for each seed alone.

    >>> from types import SimpleNamespace
    >>> seeds = [torch.nn.Linear(2, 1) for _ in range(2)]
    >>> parts = [SimpleNamespace(optimizers={"loss": torch.optim.SGD(m.parameters())}, grad_clip=1.0) for m in seeds]
    >>> for scale, m in zip([0.1, 10.0], seeds):
    ...     m.weight.grad, m.bias.grad = torch.full((1, 2), scale), torch.zeros(1)
    >>> clip_per_seed(parts)                              # norms before clipping; seed 1's is clipped to 1
    tensor([ 0.1414, 14.1421])
    >>> seeds[0].weight.grad, seeds[1].weight.grad
    (tensor([[0.1000, 0.1000]]), tensor([[0.7071, 0.7071]]))
    """
    grads = [[p.grad for opt in part.optimizers.values() for group in opt.param_groups for p in group["params"]
              if p.grad is not None] for part in parts]
    clips = [part.grad_clip if part.grad_clip is not None else float("inf") for part in parts]
    if len({len(g) for g in grads}) != 1 or not grads[0]:  # seeds with different sets of gradients: one by one
        return torch.stack([torch.nn.utils.clip_grad_norm_(g, c) for g, c in zip(grads, clips)])
    flat = [g for seed in grads for g in seed]
    norms = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(flat)).view(len(parts), -1), dim=1)
    coef = torch.clamp(torch.tensor(clips, dtype=norms.dtype, device=norms.device) / (norms + 1e-6), max=1.0)
    torch._foreach_mul_(flat, list(coef.repeat_interleave(len(grads[0])).unbind()))
    return norms


class StackedLearners:
    """K value-decomposition learners (IQL, VDN, QMIX, non-monotonic QMIX from replay, or PQN on its rollouts)
    stepped as one computation.

    Args:
        parts: one :class:`AlgorithmParts` per seed, of one configuration (same algorithm, model and
            env sizes), each with one optimiser, ``"loss"``.
    """

    def __init__(self, parts: Sequence[AlgorithmParts]):
        self.parts = list(parts)
        for p in self.parts:
            if list(p.optimizers) != ["loss"]:
                raise ConfigError(f"stacked seeds need one optimiser per seed, 'loss'; got {list(p.optimizers)}")
        self.loss = stacked_loss([p.loss for p in self.parts])

    @classmethod
    def build(cls, seeds: Sequence[int], cfg: Any, model_cfg: Any, info, device, total_frames: int, *,
              burn_in: int = 0) -> "StackedLearners":
        """Build each seed's parts after ``torch.manual_seed(seed)``, as a single run of that seed does
        (its initial parameters are that run's when nothing else draws from torch's generator first)."""
        builder, parts = ALGORITHMS.get(schema_name(cfg, "algorithm")), []
        for seed in seeds:
            torch.manual_seed(seed)
            parts.append(builder(cfg, model_cfg, info, device, total_frames, burn_in=burn_in))
        return cls(parts)

    @property
    def num_seeds(self) -> int:
        return len(self.parts)

    def step(self, batches: Sequence[TensorDictBase]) -> list[dict[str, torch.Tensor]]:
        """One gradient step of every seed, seed ``k`` on ``batches[k]``; returns each seed's logs (the keys
        of :func:`~marl_torchrl.update.gradient_step`, with ``skipped`` / ``nonfinite`` on a skipped seed)."""
        out = self.loss(batches)
        for p in self.parts:
            for opt in p.optimizers.values():
                opt.zero_grad(set_to_none=True)
        out["loss"].sum().backward()
        norms = clip_per_seed(self.parts)
        loss_ok, norm_ok = torch.stack([torch.isfinite(out["loss"].detach()), torch.isfinite(norms)]).tolist()
        logs = []
        for k, p in enumerate(self.parts):  # as gradient_step: a seed with a non-finite loss or norm skips
            log = {**{name: value.detach().reshape(()) for name, value in out[k].items()}, "grads": norms[k].detach()}
            if loss_ok[k] and norm_ok[k]:
                for opt in p.optimizers.values():
                    opt.step()
                p.target_updater.step()
            else:
                for opt in p.optimizers.values():
                    opt.zero_grad(set_to_none=True)
                log.update(skipped=torch.ones(()), nonfinite="loss" if not loss_ok[k] else "grads")
            logs.append(log)
        return logs
