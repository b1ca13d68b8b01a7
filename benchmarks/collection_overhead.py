"""Collection overhead: our collector (GRU policy, epsilon-greedy) against a bare VMAS rollout, CPU.

Both step VMAS ``balance`` (4 agents, discrete actions) with ``--envs`` envs on one torch thread:

- **bare**: ``vmas.make_env`` and a loop of ``env.step`` with uniformly random actions (no torchrl,
  no policy, no resets: the lower bound of what stepping the simulator costs);
- **bare with resets**: the same with 100-step episodes, each finished env reset by ``env.reset_at(i)``
  (VMAS's own partial reset), which is what the collector also has to do;
- **ours**: ``make_env`` (the standard face: TensorDicts, step counter, team reward, hidden-state primer)
  and a torchrl ``Collector`` running the QMIX acting policy (shared GRU agent net, epsilon-greedy over
  the available actions, recurrent state carried and reset per env), ``--steps`` steps per batch.

Each is timed over ``--repeats`` batches after one warm-up batch, alternating; the figure is frames/s
(env steps x envs per second) and the ratio ours / bare. Results append to
``benchmarks/results/collection_overhead.csv``.

    python benchmarks/collection_overhead.py --envs 256 --steps 100 --repeats 5
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def bare_vmas(envs: int, steps: int, resets: bool):
    import vmas

    env = vmas.make_env("balance", num_envs=envs, device="cpu", continuous_actions=False, n_agents=4,
                        max_steps=100 if resets else None, seed=0)
    env.reset()

    def run() -> float:
        t = time.perf_counter()
        for _ in range(steps):
            *_, done, _ = env.step([torch.randint(0, 9, (envs,)) for _ in env.agents])
            if resets and done.any():  # as a VMAS user would: reset each finished env
                for i in done.nonzero()[:, 0].tolist():
                    env.reset_at(i)
        return envs * steps / (time.perf_counter() - t)

    return run


def our_collector(envs: int, steps: int, model: str):
    from hydra import compose, initialize_config_dir
    from torchrl.collectors import Collector

    from marl_torchrl.algorithms import build_algorithm
    from marl_torchrl.config import CONFIG_DIR
    from marl_torchrl.envs import describe, make_env

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=["algorithm=qmix", "env=vmas/balance", f"model.type={model}"])
    env = make_env(cfg.env, num_envs=envs, seed=0)
    parts = build_algorithm(cfg, describe(env), torch.device("cpu"))
    for t in parts.env_transforms:
        env.append_transform(t)
    collector = Collector(env, parts.policy, frames_per_batch=envs * steps, total_frames=-1, trust_policy=True)
    it = iter(collector)

    def run() -> float:
        t = time.perf_counter()
        next(it)
        return envs * steps / (time.perf_counter() - t)

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", type=int, nargs="+", default=[256])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model", choices=["gru", "mlp"], default="gru")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for envs in a.envs:
        runs = {"bare": bare_vmas(envs, a.steps, False), "bare_resets": bare_vmas(envs, a.steps, True),
                "ours": our_collector(envs, a.steps, a.model)}
        fps = {k: [] for k in runs}
        for rep in range(a.repeats + 1):  # the first round warms up
            for k, run in runs.items():
                f = run()
                if rep:
                    fps[k].append(f)
        med = {k: statistics.median(v) for k, v in fps.items()}
        row = {"envs": envs, "steps": a.steps, "policy": f"qmix {a.model} epsilon-greedy",
               "bare_vmas_fps": round(med["bare"]), "bare_vmas_resets_fps": round(med["bare_resets"]),
               "ours_fps": round(med["ours"]), "ratio": round(med["ours"] / med["bare"], 3),
               "ratio_to_bare_resets": round(med["ours"] / med["bare_resets"], 3),
               "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": 1}
        print(row, flush=True)
        rows.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "collection_overhead.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
