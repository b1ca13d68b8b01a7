"""What the actor-critic tests (FACMAC, DOP) share: the recurrent-contract check on VMAS balance, a
tiny training run's overrides, and the check that a checkpoint evaluates deterministically."""
from __future__ import annotations

import torch
from rollout_helpers import collect_balance

from marl_torchrl import keys
from marl_torchrl.data import SequenceBuilder
from marl_torchrl.evaluate import main as evaluate_main

# 4 envs x 10 steps per iteration, 3 iterations, evaluation at 80 frames and at the end
TINY_VMAS = [
    "env=vmas/balance", "env.num_envs=4", "env.max_steps=10", "collector.frames_per_batch=40", "total_frames=120",
    "replay.batch_size=4", "replay.warmup=4", "train.updates_per_batch=2", "eval.episodes=2",
    "eval.interval_frames=80", "model.hidden_dim=16", "checkpoint.interval_frames=1000",
]


def assert_actor_outputs_match_acting(build, algo_cfg: dict, *, continuous: bool, out_key):
    """Collect GRU-policy episodes on VMAS balance; the actor outputs the loss unrolls from the stored
    start states equal those the acting policy wrote under ``out_key`` at every valid step. Returns the
    parts and the replayed sequences."""
    parts, batches = collect_balance(build, algo_cfg, dict(type="gru", hidden_dim=16), continuous=continuous)
    builder = SequenceBuilder(12, hidden_key=keys.HIDDEN, extra_keys=(out_key,))
    seqs = torch.cat([s for s in (builder.add(b) for b in batches) if s is not None])
    with torch.no_grad():
        raw, _ = parts.loss.actor.unroll(seqs[keys.OBS], seqs[keys.HIDDEN])
    valid = seqs[keys.MASK].squeeze(-1)
    torch.testing.assert_close(raw[valid], seqs[out_key][valid], atol=1e-5, rtol=1e-5)
    return parts, seqs


def assert_checkpoint_evaluates_deterministically(run_dir) -> None:
    """Two evaluations of the final model with the same seed give the same return (no exploration)."""
    argv = [f"checkpoint={run_dir}/models/final_model.pt", "episodes=2", "seed=5"]
    assert evaluate_main(argv)["eval/ep_reward"] == evaluate_main(argv)["eval/ep_reward"]
