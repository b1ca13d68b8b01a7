"""Per-episode greedy returns of LBF checkpoints: how many episodes clear no item, one item or both.

A mean of 0.45 can be every episode clearing one of two items or half the episodes clearing both; this
tells which. 64 greedy episodes per checkpoint (env seed 777, not the training or evaluation seeds).

    python benchmarks/lbf_episode_returns.py benchmarks/runs/reproduce/lbf_8x8_2p_2f_coop/qmix_s0/models/final_model.pt
"""
from __future__ import annotations

import collections
import sys

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marl_torchrl.evaluate import load_policy
from marl_torchrl.rollout_stats import first_episodes


def episode_returns(checkpoint: str, episodes: int = 64, seed: int = 777) -> tuple[torch.Tensor, torch.Tensor]:
    """Each env's first-episode team return and length under the greedy policy."""
    env, policy, cfg, info = load_policy(checkpoint, episodes=episodes, seed=seed)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        rollout = env.rollout(info.max_steps, policy, break_when_any_done=False)
    return first_episodes(rollout)


def main() -> None:
    torch.set_num_threads(1)
    for checkpoint in sys.argv[1:]:
        returns, lengths = episode_returns(checkpoint)
        counts = sorted(collections.Counter(round(float(r), 2) for r in returns).items())
        print(f"{checkpoint}: mean {returns.mean():.3f}, episodes by return {counts}, mean length {lengths.float().mean():.1f}")


if __name__ == "__main__":
    main()
