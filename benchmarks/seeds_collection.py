"""Collection alone in ``num_seeds=K``: batched (one env of K x num_envs, one policy forward) against per-seed
collection (``collector.batch_seeds=false``), on any env preset.

``seeds_e2e.py`` times whole training loops, in which the stacked gradient steps take most of the time; this
times only the collection: each round sets up a K-run for each path (set-up excluded), collects one batch
to warm up (SMAX compiles its jitted reset and step there), then ``--batches`` batches, stepping every seed's
exploration schedule as the loop does, in the process's CPU time and wall time. Rounds alternate the
paths; figures are medians. Frames/s per seed counts every seed's frames (``K * frames / seconds``).

Writes ``<results>/seeds_collection<tag>.csv``.

    python benchmarks/seeds_collection.py --env gridworld/gridworld25 --seeds 4 --tag _gridworld25_k4
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from marl_torchrl.config import compose_config
from marl_torchrl.seeds.collection import make_collection
from marl_torchrl.seeds.loop import setup_seeds
from seeds_throughput import write_csv


def one_round(args, batched: bool, out: Path) -> tuple[float, float, int]:
    """Collect ``args.batches`` batches with one path; returns (wall s, CPU s, frames per seed)."""
    cfg = compose_config("algorithm=qmix", f"env={args.env}", "threads=1", f"num_seeds={args.seeds}",
                         "total_frames=100000000", "eval.interval_frames=0", "logger=[]",
                         f"collector.batch_seeds={str(batched).lower()}", *args.set)
    sr = setup_seeds(cfg, out)
    collection = make_collection(sr)
    frames = 0
    try:
        for i in range(args.batches + 1):
            if i == 1:  # the first batch warms up (jit compilation, first resets)
                cpu, wall = time.process_time(), time.perf_counter()
            batches, _ = collection.next()
            for r, b in zip(sr.runs, batches):
                r.parts.exploration_step(b.numel())
            frames += batches[0].numel() if i else 0
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        collection.shutdown()
        for r in sr.runs:
            r.loggers.close()
    return wall, cpu, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="gridworld/gridworld25")
    parser.add_argument("--set", nargs="*", default=[], help="more config overrides, e.g. env.num_envs=32")
    parser.add_argument("--seeds", type=int, default=4, help="K")
    parser.add_argument("--batches", type=int, default=5, help="batches timed per round (after one warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--tag", default="")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    times = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for batched in (True, False):
                wall, cpu, frames = one_round(args, batched, Path(tmp) / f"r{r}_{batched}")
                times[batched].append((wall, cpu))
                print(f"round {r} {'batched' if batched else 'per-seed'} K={args.seeds}: {frames} frames per seed, "
                      f"{wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    load = os.getloadavg()[0]
    med = {b: tuple(statistics.median(t[i] for t in times[b]) for i in (0, 1)) for b in times}
    rows = [{"env": args.env, "path": "batched" if b else "per-seed", "num_seeds": args.seeds,
             "frames_per_seed": frames, "repeats": args.repeats, "s_wall": round(med[b][0], 3),
             "s_cpu": round(med[b][1], 3), "fps_per_seed_wall": round(args.seeds * frames / med[b][0], 1),
             "fps_per_seed_cpu": round(args.seeds * frames / med[b][1], 1),
             "batched_over_per_seed_cpu": round(med[False][1] / med[b][1], 2),
             "batched_over_per_seed_wall": round(med[False][0] / med[b][0], 2),
             "load_avg_1min": round(load, 2), "note": args.note} for b in (True, False)]
    write_csv(rows, args.results / f"seeds_collection{args.tag}.csv")


if __name__ == "__main__":
    main()
