"""End-to-end throughput of ``num_seeds=K`` (K seeds in one process) against one ordinary run.

Each round trains, one after another in this process, an ordinary run (``num_seeds=1``), K-runs for
each ``--seeds`` K (path ``stacked``: batched collection, the default where the env family can: one VMAS
env of K x 32 envs, one policy forward) and, for comparison, K-runs for each ``--per-seed`` K with
per-seed collection (path ``stacked-per-seed``: ``collector.batch_seeds=false``, each seed steps its own
env), all on VMAS balance (or ``--env``, with ``--set`` overrides) with GRU QMIX (the shipped presets: 32 envs x 100 steps per iteration, 8
gradient steps of 32 sequences x 100 steps), one CPU thread, ``--frames`` frames per seed, no evaluation, no logger, no checkpoint before the last. Timed: the training loop (``loop.train`` /
``seeds.loop.train_seeds``, set-up excluded) in wall time and in the process's CPU time (less disturbed by
other jobs on a loaded machine). Figures are medians over ``--repeats`` rounds. Frames/s per seed, as in
``seeds_throughput.py``, counts every seed's frames: ``K * frames / loop seconds`` (a K-run does K seeds'
work; at K = 1 it is the single run's frames/s), so its ratio to the single run's is how much cheaper a
seed's frame is in a K-run. The issue's goal: at K = 8, at least 2x.

Writes ``<results>/seeds_e2e<tag>.csv`` (one row per path and K: median loop wall and CPU seconds, frames/s per seed
and its ratio to the single run's, for both clocks, load average, peak memory, a note) and ``.png``.

    python benchmarks/seeds_e2e.py --frames 6400 --seeds 2 4 8 16 --per-seed 8 --repeats 1
    python benchmarks/seeds_e2e.py --env gridworld/gridworld25 --seeds 4 --per-seed 4 --tag _gridworld25_k4
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from marl_torchrl.config import compose_config
from marl_torchrl.loop import setup, train
from marl_torchrl.seeds.loop import setup_seeds, train_seeds
from marl_torchrl.seeds.memory import keep_freed_memory
from seeds_throughput import plot_per_seed, write_csv

GOAL = 2.0  # the goal at K = 8: end-to-end frames/s per seed >= 2x a single run's


def one_run(k: int, batched: bool, args, out: Path) -> tuple[float, float]:
    """Train one run of ``k`` seeds (batched or per-seed collection); returns the loop's (wall, CPU) seconds."""
    cfg = compose_config("algorithm=qmix", f"env={args.env}", "threads=1", f"total_frames={args.frames}",
                         f"num_seeds={k}", "eval.interval_frames=0", f"checkpoint.interval_frames={10 ** 9}",
                         f"replay.capacity={args.capacity}", "logger=[]", f"collector.batch_seeds={str(batched).lower()}",
                         *args.set)
    prepared = setup(cfg, out) if k == 1 else setup_seeds(cfg, out)
    cpu, wall = time.process_time(), time.perf_counter()
    metrics = train(prepared) if k == 1 else train_seeds(prepared)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    frames = [metrics["frames"]] if k == 1 else [m["frames"] for m in metrics.values()]
    assert frames == [args.frames] * k, frames
    return wall, cpu


def measure(args) -> list[dict]:
    runs = [("single", 1, False)] + [("stacked", k, True) for k in args.seeds] + \
        [("stacked-per-seed", k, False) for k in args.per_seed]
    times: dict[tuple, list[tuple[float, float]]] = {r: [] for r in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for path, k, batched in times:
                wall, cpu = one_run(k, batched, args, Path(tmp) / f"r{r}_{path}_k{k}")
                times[path, k, batched].append((wall, cpu))
                print(f"round {r} {path} K={k}: loop {wall:.1f} s wall, {cpu:.1f} s CPU; frames/s per seed "
                      f"{k * args.frames / wall:.0f} frames/s wall, {k * args.frames / cpu:.0f} frames/s CPU", flush=True)
    load, peak = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base_wall, base_cpu = (statistics.median(t[i] for t in times[runs[0]]) for i in (0, 1))
    rows = []
    for (path, k, _), samples in times.items():
        wall, cpu = (statistics.median(t[i] for t in samples) for i in (0, 1))
        rows.append({
            "path": path, "num_seeds": k, "frames_per_seed": args.frames,
            "repeats": args.repeats, "loop_s_wall": round(wall, 2), "loop_s_cpu": round(cpu, 2),
            "fps_per_seed_wall": round(k * args.frames / wall, 1), "fps_per_seed_cpu": round(k * args.frames / cpu, 1),
            "ratio_wall": round(k * base_wall / wall, 2), "ratio_cpu": round(k * base_cpu / cpu, 2),
            "load_avg_1min": round(load, 2), "peak_rss_mb": round(peak), "note": args.note,
        })
    return rows


def plot(rows: list[dict], path: Path, args) -> None:
    plot_per_seed(rows, path, value="fps_per_seed", baseline=rows[0], baseline_label="one ordinary run",
                  ylabel="end-to-end frames/s per seed", goal=GOAL,
                  title=f"{args.env}, GRU QMIX, {args.frames} frames per seed, 1 CPU thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 4, 8], help="K of the K-runs (batched collection)")
    parser.add_argument("--per-seed", type=int, nargs="*", default=[],
                        help="K of K-runs with per-seed collection (collector.batch_seeds=false), for comparison")
    parser.add_argument("--frames", type=int, default=9600, help="frames per seed (3200 per iteration)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--capacity", type=int, default=500, help="replay sequences kept per seed")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument("--env", default="vmas/balance", help="env preset (env=...), e.g. gridworld/gridworld25")
    parser.add_argument("--set", nargs="*", default=[], help="more config overrides, e.g. env.num_envs=32")
    parser.add_argument("--note", default="", help="written into every CSV row (e.g. the machine's state)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()  # for the single run too, as the K-runs have it
    rows = measure(args)
    csv_path = args.results / f"seeds_e2e{args.tag}.csv"
    write_csv(rows, csv_path)
    plot(rows, csv_path.with_suffix(".png"), args)


if __name__ == "__main__":
    main()
