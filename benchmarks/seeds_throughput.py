"""Learner throughput of K seeds stacked in one process (``marl_torchrl.seeds``) against one plain learner.

For K = 1, 2, 4, 8, 16 it times :meth:`~marl_torchrl.seeds.StackedLearners.step` (one gradient step of every
seed: the stacked loss forward and backward, then each seed's clip, optimiser and target update) and, in
the same rounds, one plain :func:`~marl_torchrl.update.gradient_step`, on one CPU thread. QMIX with GRU
agents at VMAS balance's sizes (4 agents, 16 observation features, 64 state features, 9 actions, hidden
64, QMIX embed 32) on random batches of ``--batch`` sequences x ``--seq-len`` steps: no env, no replay.

Rounds alternate the plain step and every K, so all see the same machine load; the figures are medians
over ``--repeats`` rounds, of CPU time (the process's own, which the other jobs on a loaded machine
disturb less) and of wall time. Both run after
:func:`~marl_torchrl.seeds.memory.keep_freed_memory` (``--no-keep-memory`` to compare without). Writes
``<results>/seeds_throughput<tag>.csv`` (one row per path and K: median step times, gradient steps/s per
seed, ratio to the plain learner, peak memory, load average, a note) and ``.png``.

    python benchmarks/seeds_throughput.py --repeats 5
    python benchmarks/seeds_throughput.py --batch 8 --seq-len 25 --tag _seq25
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import time
from pathlib import Path

import torch

from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.config import ModelConfig, ValueDecompositionConfig
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.seeds import StackedLearners
from marl_torchrl.seeds.memory import keep_freed_memory
from marl_torchrl.update import gradient_step

BALANCE = EnvSpecInfo(n_agents=4, obs_dim=16, state_dim=64, n_actions=9, continuous=False, action_low=None,
                      action_high=None, has_action_mask=False, max_steps=100)
ALGO = ValueDecompositionConfig(name="qmix", mixer="qmix", mixer_options={"mixing_embed_dim": 32})
MODEL = ModelConfig(type="gru", hidden_dim=64)
TARGET = 2.5  # the goal at K = 8: gradient steps/s per seed >= 2.5x a single learner's


def batches(seeds, args) -> list:
    return [random_sequences(batch=args.batch, seq_len=args.seq_len, n_agents=BALANCE.n_agents,
                             obs_dim=BALANCE.obs_dim, n_actions=BALANCE.n_actions, state_dim=BALANCE.state_dim,
                             hidden_dim=MODEL.hidden_dim, generator=torch.Generator().manual_seed(1000 + s))
            for s in seeds]


def timed(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(args) -> list[dict]:
    torch.manual_seed(0)
    plain = build_value_decomposition(ALGO, MODEL, BALANCE, "cpu", total_frames=10**6)
    plain_batch = batches([0], args)[0]
    runs = {0: lambda: gradient_step(plain, plain_batch)}  # key 0: the plain learner
    for k in args.seeds:
        learners = StackedLearners.build(range(k), ALGO, MODEL, BALANCE, "cpu", total_frames=10**6)
        runs[k] = lambda learners=learners, data=batches(range(k), args): learners.step(data)
    for fn in runs.values():  # warm-up: first-touch memory, lazy optimiser state
        fn()
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn))
    load = os.getloadavg()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base_cpu = statistics.median(c for c, _ in times[0])
    base_wall = statistics.median(w for _, w in times[0])
    rows = []
    for k, samples in times.items():
        seeds = max(k, 1)
        cpu, wall = statistics.median(c for c, _ in samples), statistics.median(w for _, w in samples)
        rows.append({
            "path": "plain" if k == 0 else "stacked", "num_seeds": seeds, "batch": args.batch,
            "seq_len": args.seq_len, "repeats": args.repeats, "step_ms_cpu": round(cpu * 1e3, 1),
            "step_ms_wall": round(wall * 1e3, 1), "steps_per_s_per_seed_cpu": round(seeds / cpu, 2),
            "steps_per_s_per_seed_wall": round(seeds / wall, 2),
            "ratio_cpu": round(base_cpu / (cpu / seeds), 2), "ratio_wall": round(base_wall / (wall / seeds), 2),
            "keep_memory": args.keep_memory, "peak_rss_mb": round(peak), "load_avg_1min": round(load, 2),
            "note": args.note,
        })
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def plot_per_seed(rows: list[dict], path: Path, *, value: str, baseline: dict, baseline_label: str, ylabel: str,
                  goal: float, title: str) -> None:
    """Left: ``<value>_cpu`` / ``_wall`` of the rows of each ``stacked*`` path against K, the baseline's as
    lines; right: their ``ratio_cpu`` / ``ratio_wall`` with the goal (also used by ``seeds_e2e.py``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [p for p in dict.fromkeys(r["path"] for r in rows) if p.startswith("stacked")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for clock, style in (("cpu", "o-"), ("wall", "s--")):
        left.axhline(baseline[f"{value}_{clock}"], ls=":", color="gray" if clock == "cpu" else "silver",
                     label=f"{baseline_label} ({clock})")
        for path_name in paths:
            stacked = [r for r in rows if r["path"] == path_name]
            ks = [r["num_seeds"] for r in stacked]
            left.plot(ks, [r[f"{value}_{clock}"] for r in stacked], style, label=f"{path_name} ({clock} time)")
            right.plot(ks, [r[f"ratio_{clock}"] for r in stacked], style, label=f"{path_name}, {clock} time")
    ks = sorted({r["num_seeds"] for r in rows if r["path"] in paths})
    right.axhline(goal, color="red", ls=":", label=f"goal at K = 8 ({goal}x)")
    right.axhline(1.0, color="gray", lw=0.8)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("seeds K in one process")
        ax.legend(fontsize=8)
    left.set_ylabel(ylabel)
    right.set_ylabel(f"per-seed speed / {baseline_label}")
    fig.suptitle(f"{title} (load {baseline['load_avg_1min']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot(rows: list[dict], path: Path, args) -> None:
    plot_per_seed(rows, path, value="steps_per_s_per_seed", baseline=next(r for r in rows if r["path"] == "plain"),
                  baseline_label="one plain learner", ylabel="gradient steps/s per seed", goal=TARGET,
                  title=f"QMIX GRU learner, balance sizes, {args.batch} x {args.seq_len} steps, 1 CPU thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32, help="sequences per gradient step")
    parser.add_argument("--seq-len", type=int, default=100, help="transitions per sequence")
    parser.add_argument("--no-keep-memory", dest="keep_memory", action="store_false")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument("--note", default="", help="written into every CSV row (e.g. the machine's state)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.keep_memory:
        args.keep_memory = keep_freed_memory()
    rows = measure(args)
    for r in rows:
        print(f"{r['path']:8s} K={r['num_seeds']:2d}: {r['step_ms_cpu']:8.1f} ms CPU per step, "
              f"{r['steps_per_s_per_seed_cpu']:6.2f} steps/s per seed, {r['ratio_cpu']:.2f}x (wall {r['ratio_wall']:.2f}x)")
    csv_path = args.results / f"seeds_throughput{args.tag}.csv"
    write_csv(rows, csv_path)
    plot(rows, csv_path.with_suffix(".png"), args)


if __name__ == "__main__":
    main()
