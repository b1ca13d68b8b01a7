"""Learning benchmark: QMIX, VDN and IQL with GRU agents on VMAS balance (4 agents), several seeds, CPU.

Runs each (algorithm, seed) as a real ``marl-train`` job (``--jobs`` at a time, one torch thread each),
then writes under ``benchmarks/results/``:

- ``balance_runs.csv``: one row per run: final greedy return (mean over eval episodes), frames,
  wall time, mean collection frames/s, mean gradient updates/s, end-to-end frames/s;
- ``balance_summary.csv``: per algorithm mean and std over seeds of the same figures, plus a random
  policy's return on the same env;
- ``balance_curves.png``: greedy evaluation return against frames, mean +- std over seeds.

    python benchmarks/learning_balance.py --frames 800000 --seeds 0 1 2 --jobs 2
"""
from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COMMON = [
    "env=vmas/balance", "env.num_envs=64", "collector.frames_per_batch=6400", "train.updates_per_batch=16",
    "replay.batch_size=32", "replay.capacity=2000", "model.type=gru", "model.hidden_dim=64", "threads=1",
    "eval.episodes=32", "eval.interval_frames=40000", "checkpoint.interval_frames=400000", "logger=[csv]",
]


def launch(algorithm: str, seed: int, frames: int, out: Path) -> subprocess.Popen:
    run_dir = out / f"{algorithm}_s{seed}"
    cmd = [sys.executable, "-m", "marl_torchrl.train", f"algorithm={algorithm}", f"seed={seed}",
           f"total_frames={frames}", f"hydra.run.dir={run_dir}", *COMMON]
    log = open(out / f"{algorithm}_s{seed}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def read_log(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def summarise_run(run_dir: Path) -> dict:
    rows = read_log(run_dir / "training_log.csv")
    evals = [r for r in rows if "eval/ep_reward" in r]
    mean = lambda key: statistics.fmean(r[key] for r in rows if key in r)  # noqa: E731
    wall = max(r.get("time/elapsed_s", 0.0) for r in rows)
    return {
        "final_return": evals[-1]["eval/ep_reward"],
        "final_return_std_episodes": evals[-1]["eval/std_ep_reward"],
        "frames": rows[-1]["frames"],
        "wall_s": wall,
        "collection_fps": mean("time/collection_fps"),
        "updates_per_s": mean("time/updates_per_s"),
        "end_to_end_fps": rows[-1]["frames"] / wall,
        "curve": [(r["frames"], r["eval/ep_reward"]) for r in evals],
    }


def random_policy_return(episodes: int = 128, seed: int = 123) -> tuple[float, float]:
    import torch
    from torchrl.envs.utils import RandomPolicy

    from marl_torchrl.envs import make_env
    from marl_torchrl.evaluate import evaluate_policy

    torch.manual_seed(seed)
    cfg = {"family": "vmas", "task": "balance", "max_steps": 100, "scenario_kwargs": {"n_agents": 4}}
    env = make_env(cfg, num_envs=episodes, seed=seed)
    m = evaluate_policy(env, RandomPolicy(env.full_action_spec), max_steps=100)
    return m["eval/ep_reward"], m["eval/std_ep_reward"]


def plot(results: dict, random_ret: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for algo, runs in results.items():
        n = min(len(r["curve"]) for r in runs)
        x = np.array([f for f, _ in runs[0]["curve"][:n]])
        y = np.array([[v for _, v in r["curve"][:n]] for r in runs])
        ax.plot(x, y.mean(0), label=f"{algo} ({len(runs)} seeds)")
        ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), alpha=0.2)
    ax.axhline(random_ret, color="grey", ls="--", label="random policy")
    ax.set_xlabel("frames")
    ax.set_ylabel("greedy eval return (team, mean over 32 episodes)")
    ax.set_title("VMAS balance, 4 agents, GRU agents, CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithms", nargs="+", default=["qmix", "vdn", "iql"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=800_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "balance")
    p.add_argument("--summarise-only", action="store_true", help="only read finished runs in --out")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(a, s) for a in args.algorithms for s in args.seeds]
    if not args.summarise_only:
        running: list[subprocess.Popen] = []
        t0 = time.time()
        while todo or running:
            while todo and len(running) < args.jobs:
                running.append(launch(*todo.pop(0), args.frames, args.out))
            time.sleep(2)
            for proc in [r for r in running if r.poll() is not None]:
                running.remove(proc)
                if proc.returncode:
                    print(f"run failed ({proc.args[3:5]}), see its log in {args.out}", file=sys.stderr)
        print(f"all runs done in {time.time() - t0:.0f} s")
    results: dict[str, list] = {}
    rows = []
    for algo in args.algorithms:
        for seed in args.seeds:
            run_dir = args.out / f"{algo}_s{seed}"
            if not (run_dir / "training_log.csv").exists():
                continue
            r = summarise_run(run_dir)
            results.setdefault(algo, []).append(r)
            rows.append({"algorithm": algo, "seed": seed, **{k: v for k, v in r.items() if k != "curve"}})
    random_ret, random_std = random_policy_return()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "balance_runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    keys = ["final_return", "collection_fps", "updates_per_s", "end_to_end_fps", "wall_s", "frames"]
    with open(RESULTS / "balance_summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["algorithm", "seeds"] + [f"{k}_{s}" for k in keys for s in ("mean", "std")])
        for algo, runs in results.items():
            stats = []
            for k in keys:
                vals = [r[k] for r in runs]
                stats += [round(statistics.fmean(vals), 3), round(statistics.pstdev(vals), 3)]
            w.writerow([algo, len(runs)] + stats)
        w.writerow(["random_policy", "-", round(random_ret, 3), round(random_std, 3)] + [""] * (2 * len(keys) - 2))
    plot(results, random_ret, RESULTS / "balance_curves.png")
    print((RESULTS / "balance_summary.csv").read_text())


if __name__ == "__main__":
    main()
