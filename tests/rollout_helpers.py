"""Collected batches from a GRU policy on VMAS balance (3 agents): what the recurrent-contract tests of
every loss (sequence replay and PQN's rollouts) compare the loss against."""
from __future__ import annotations

import torch
from torchrl.collectors import Collector

from marl_torchrl.envs import describe, make_env


def collect_balance(build, algo_cfg, model_cfg, *, seed: int = 0, num_envs: int = 4, max_steps: int = 12,
                    steps: int = 7, n_batches: int = 3, continuous: bool = False, prepare=None):
    """``(parts, batches)``: the algorithm ``build(algo_cfg, model_cfg, ...)`` acting for ``n_batches``
    collector batches of ``num_envs x steps`` frames, each batch cloned as the collector gave it;
    ``prepare(parts)`` runs before the first step."""
    torch.manual_seed(seed)
    env = make_env({"family": "vmas", "task": "balance", "max_steps": max_steps, "continuous_actions": continuous,
                    "scenario_kwargs": {"n_agents": 3}}, num_envs=num_envs, seed=seed)
    parts = build(algo_cfg, model_cfg, describe(env), "cpu", 1000)
    if prepare is not None:
        prepare(parts)
    for t in parts.env_transforms:
        env.append_transform(t)
    collector = Collector(env, parts.policy, frames_per_batch=num_envs * steps,
                          total_frames=num_envs * steps * n_batches, trust_policy=True)
    batches = [b.clone() for b in collector]
    collector.shutdown()
    return parts, batches
