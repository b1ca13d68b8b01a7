"""Learning benchmark on VMAS balance (4 agents), GRU agents, several seeds, CPU.

A variant is an algorithm plus overrides (see ``VARIANTS``: e.g. ``facmac_continuous`` is FACMAC with
``env.continuous_actions=true``). Runs each (variant, seed) as a real ``marl-train`` job (``--jobs`` at a
time, one torch thread each) unless its run directory already holds a log that reaches ``--frames``
(so runs are shared between reports), then writes under ``benchmarks/results/``:

- ``<name>_runs.csv``: one row per run: final greedy return (mean over eval episodes) at ``--frames``,
  frames, wall time, mean collection frames/s, mean gradient updates/s, end-to-end frames/s;
- ``<name>_summary.csv``: per variant mean and std over seeds of the same figures, plus a random
  policy's return on the same env (discrete and, when a variant is continuous, continuous actions);
- ``<name>_curves.png``: greedy evaluation return against frames, mean +- std over seeds.

    python benchmarks/learning_balance.py --frames 800000 --seeds 0 1 2 --jobs 2        # QMIX, VDN, IQL
    python benchmarks/learning_balance.py --name facmac_balance --frames 400000 \
        --variants qmix ow_qmix facmac facmac_continuous
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
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
RESULTS = ROOT / "benchmarks" / "results"
FRAMES_PER_BATCH = 6400
COMMON = [
    "env=vmas/balance", "env.num_envs=64", f"collector.frames_per_batch={FRAMES_PER_BATCH}", "train.updates_per_batch=16",
    "replay.batch_size=32", "replay.capacity=2000", "model.type=gru", "model.hidden_dim=64", "threads=1",
    "eval.episodes=32", "eval.interval_frames=40000", "checkpoint.interval_frames=400000", "logger=[csv]",
]


VARIANTS = {
    "qmix": ["algorithm=qmix"],
    "vdn": ["algorithm=vdn"],
    "iql": ["algorithm=iql"],
    "qmix_nonmono": ["algorithm=qmix_nonmono"],
    "ow_qmix": ["algorithm=ow_qmix"],
    "cw_qmix": ["algorithm=cw_qmix"],
    "facmac": ["algorithm=facmac"],
    "facmac_continuous": ["algorithm=facmac", "env.continuous_actions=true"],
    "dop": ["algorithm=dop"],
    "dop_continuous": ["algorithm=dop", "env.continuous_actions=true"],
    "pqn_vdn": ["algorithm=pqn_vdn"],
    "pqn_qmix": ["algorithm=pqn_qmix"],
}


def launch(variant: str, seed: int, frames: int, out: Path, overrides=None, common=COMMON) -> subprocess.Popen:
    """Start one ``marl-train`` run (``overrides`` default to ``VARIANTS[variant]``) in ``out``."""
    run_dir = out / f"{variant}_s{seed}"
    cmd = [sys.executable, "-m", "marl_torchrl.train", *common, *(overrides or VARIANTS[variant]), f"seed={seed}",
           f"total_frames={frames}", f"hydra.run.dir={run_dir}"]  # a variant's overrides win over common ones
    log = open(out / f"{variant}_s{seed}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def run_all(todo: list, start, jobs: int) -> None:
    """Run ``start(*item)`` for every item of ``todo``, ``jobs`` processes at a time."""
    running: dict[subprocess.Popen, tuple] = {}
    t0 = time.time()
    while todo or running:
        while todo and len(running) < jobs:
            item = todo.pop(0)
            running[start(*item)] = item
        time.sleep(2)
        for proc in [r for r in running if r.poll() is not None]:
            item = running.pop(proc)
            if proc.returncode:
                print(f"run failed: {item}, see its log", file=sys.stderr)
    print(f"all runs done in {time.time() - t0:.0f} s")


def read_log(path: Path, frames: float = float("inf"), frames_per_batch: int = FRAMES_PER_BATCH) -> list[dict]:
    """Rows of a run's log up to the iteration that reaches ``frames`` (the last one a run of that
    length collects), so a longer run reports what it had at ``frames``."""
    with open(path) as f:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    limit = -(-frames // frames_per_batch) * frames_per_batch if frames != float("inf") else frames
    return [r for r in rows if r["frames"] <= limit]


def finished(run_dir: Path, frames: int) -> bool:
    log = run_dir / "training_log.csv"
    return log.exists() and any(r["frames"] >= frames and "eval/ep_reward" in r for r in read_log(log, frames))


def summarise_run(run_dir: Path, frames: int) -> dict:
    rows = read_log(run_dir / "training_log.csv", frames)
    evals = [r for r in rows if "eval/ep_reward" in r]
    mean = lambda key: statistics.fmean(r[key] for r in rows if key in r)  # noqa: E731
    wall = max(r.get("time/elapsed_s", 0.0) for r in rows)
    won = {"final_battle_won": evals[-1]["eval/battle_won"]} if "eval/battle_won" in evals[-1] else {}
    return {
        **won,
        "final_return": evals[-1]["eval/ep_reward"],
        "final_return_std_episodes": evals[-1]["eval/std_ep_reward"],
        "frames": rows[-1]["frames"],
        "wall_s": wall,
        "collection_fps": mean("time/collection_fps"),
        "updates_per_s": mean("time/updates_per_s"),
        "end_to_end_fps": rows[-1]["frames"] / wall,
        "curve": [(r["frames"], r["eval/ep_reward"]) for r in evals],
        "won_curve": [(r["frames"], r["eval/battle_won"]) for r in evals if "eval/battle_won" in r],
    }


def random_policy_return(episodes: int = 128, seed: int = 123, continuous: bool = False) -> tuple[float, float]:
    import torch
    from torchrl.envs.utils import RandomPolicy

    from marl_torchrl.envs import make_env
    from marl_torchrl.evaluate import evaluate_policy

    torch.manual_seed(seed)
    cfg = {"family": "vmas", "task": "balance", "max_steps": 100, "scenario_kwargs": {"n_agents": 4},
           "continuous_actions": continuous}
    env = make_env(cfg, num_envs=episodes, seed=seed)
    m = evaluate_policy(env, RandomPolicy(env.full_action_spec), max_steps=100)
    return m["eval/ep_reward"], m["eval/std_ep_reward"]


def plot(results: dict, randoms: dict[str, float], path: Path, title: str = "VMAS balance, 4 agents, GRU agents, CPU",
         curve: str = "curve", ylabel: str = "greedy eval return (team, mean over 32 episodes)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for algo, runs in results.items():
        n = min(len(r[curve]) for r in runs)
        x = np.array([f for f, _ in runs[0][curve][:n]])
        y = np.array([[v for _, v in r[curve][:n]] for r in runs])
        ax.plot(x, y.mean(0), label=f"{algo} ({len(runs)} seeds)")
        ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), alpha=0.2)
    for (label, value), style in zip(randoms.items(), ("--", ":")):
        ax.axhline(value, color="grey", ls=style, label=label)
    ax.set_xlabel("frames")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def collect(out: Path, variants, seeds, frames: int) -> tuple[dict, list]:
    """Summaries of the finished runs in ``out``: per variant a list of runs, and one CSV row per run."""
    results: dict[str, list] = {}
    rows = []
    for algo in variants:
        for seed in seeds:
            run_dir = out / f"{algo}_s{seed}"
            if finished(run_dir, frames):
                r = summarise_run(run_dir, frames)
                results.setdefault(algo, []).append(r)
                rows.append({"algorithm": algo, "seed": seed, **{k: v for k, v in r.items() if "curve" not in k}})
    return results, rows


def write_results(name: str, results: dict, rows: list, randoms: dict) -> None:
    """``<name>_runs.csv`` (a row per run) and ``<name>_summary.csv`` (mean and std over seeds)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}_runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(max(rows, key=len)))
        w.writeheader()
        w.writerows(rows)
    keys = ["final_return", "collection_fps", "updates_per_s", "end_to_end_fps", "wall_s", "frames"]
    if any("final_battle_won" in r for r in rows):
        keys.insert(1, "final_battle_won")
    with open(RESULTS / f"{name}_summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["algorithm", "seeds"] + [f"{k}_{s}" for k in keys for s in ("mean", "std")])
        for algo, runs in results.items():
            stats = []
            for k in keys:
                vals = [r[k] for r in runs]
                stats += [round(statistics.fmean(vals), 3), round(statistics.pstdev(vals), 3)]
            w.writerow([algo, len(runs)] + stats)
        for label, (ret, std) in randoms.items():
            w.writerow([label.replace(" ", "_"), "-", round(ret, 3), round(std, 3)] + [""] * (2 * len(keys) - 2))
    print((RESULTS / f"{name}_summary.csv").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["qmix", "vdn", "iql"], choices=sorted(VARIANTS))
    p.add_argument("--name", default="balance", help="prefix of the result files")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=800_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "balance")
    p.add_argument("--summarise-only", action="store_true", help="only read finished runs in --out")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(a, s) for a in args.variants for s in args.seeds if not finished(args.out / f"{a}_s{s}", args.frames)]
    if not args.summarise_only:
        run_all(todo, lambda a, s: launch(a, s, args.frames, args.out), args.jobs)
    results, rows = collect(args.out, args.variants, args.seeds, args.frames)
    randoms = {"random policy": random_policy_return()}
    if any("continuous_actions=true" in " ".join(VARIANTS[v]) for v in args.variants):
        randoms["random policy (continuous)"] = random_policy_return(continuous=True)
    write_results(args.name, results, rows, randoms)
    plot(results, {k: v[0] for k, v in randoms.items()}, RESULTS / f"{args.name}_curves.png")


if __name__ == "__main__":
    main()
