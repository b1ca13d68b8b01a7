"""PQN's recurrent unroll over a rollout: the one reset-aware unroll (``rollout_ops.unroll_with_next``: the
rows through the hand-written GRU with resets, each step's next observation slotted in) against the
fallback for nets without a reset-aware unroll (the network stepped one step at a time, then a second
pass over every next observation), both on the same collected rollout.

One PQN gradient step on a minibatch of whole env rows of a real VMAS balance rollout (GRU agents, one torch
thread), timed for each unroll in alternating rounds within one invocation, so machine load hits both alike.
Writes ``benchmarks/results/pqn_unroll.csv``.

    python benchmarks/pqn_unroll.py --envs 32 --steps 100 --rounds 5
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from torchrl.collectors import Collector

    from marl_torchrl.algorithms.pqn import build_pqn
    from marl_torchrl.config import ModelConfig
    from marl_torchrl.config.pqn import PQNConfig
    from marl_torchrl.envs import describe, make_env
    from marl_torchrl.objectives import rollout_ops
    from marl_torchrl.update import gradient_step

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", type=int, default=32)
    p.add_argument("--steps", type=int, default=100, help="rollout steps per env")
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5, help="gradient steps timed per round and unroll")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = make_env({"family": "vmas", "task": "balance"}, num_envs=args.envs, seed=0)
    parts = build_pqn(PQNConfig(name="pqn_vdn", mixer="vdn"), ModelConfig(), describe(env), "cpu", 10**6)
    for t in parts.env_transforms:  # the hidden state and episode-start flags the loss reads
        env.append_transform(t)
    frames = args.envs * args.steps
    collector = Collector(env, parts.policy, frames_per_batch=frames, total_frames=2 * frames, trust_policy=True)
    batch = [b for b in collector][-1]  # the second rollout: it starts mid-episode from carried states
    collector.shutdown()
    rows = batch[: args.envs // args.minibatches]
    resets = int(rows["is_init"][:, 1:].sum())
    reset_aware = rollout_ops._resets_in_unroll
    unrolls = {"one_unroll": reset_aware, "stepwise": lambda net: False}
    times: dict[str, list[float]] = {k: [] for k in unrolls}
    for _ in range(args.rounds):
        for name, fn in unrolls.items():
            rollout_ops._resets_in_unroll = fn  # which path unroll_with_next takes
            gradient_step(parts, rows)  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                gradient_step(parts, rows)
            times[name].append((time.perf_counter() - t0) / args.repeats * 1000)
    rollout_ops._resets_in_unroll = reset_aware
    med = {k: statistics.median(v) for k, v in times.items()}
    out = [{"unroll": k, "envs_per_minibatch": len(rows), "steps": args.steps, "resets_inside_rows": resets,
            "ms_per_gradient_step_median": round(med[k], 2), "ms_min": round(min(times[k]), 2),
            "ms_max": round(max(times[k]), 2), "speedup_vs_stepwise": round(med["stepwise"] / med[k], 2)}
           for k in unrolls]
    for r in out:
        print(r)
    args.results.mkdir(parents=True, exist_ok=True)
    with open(args.results / "pqn_unroll.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)


if __name__ == "__main__":
    main()
