"""Throughput on VMAS balance (4 agents, GRU agents, CPU, one torch thread), one run at a time.

The learning benchmark runs two jobs side by side, so its frames/s figures include contention. This
script runs each algorithm alone for a short budget with the same settings and writes
``benchmarks/results/balance_throughput.csv``: collection frames/s, gradient updates/s and
end-to-end frames/s (mean over iterations after the first, which includes warm-up).

    python benchmarks/throughput_balance.py --frames 64000
    python benchmarks/throughput_balance.py --variants qmix_nonmono ow_qmix cw_qmix facmac facmac_continuous

Rows of variants not run this time are kept, so the CSV collects every variant measured.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
from pathlib import Path

from learning_balance import RESULTS, ROOT, VARIANTS, launch, read_log


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["qmix", "vdn", "iql"], choices=sorted(VARIANTS))
    p.add_argument("--frames", type=int, default=64_000)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "throughput")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for algo in args.variants:
        proc = launch(algo, 0, args.frames, args.out)
        if proc.wait():
            raise SystemExit(f"{algo} failed; see {args.out}/{algo}_s0.log")
        log = read_log(args.out / f"{algo}_s0" / "training_log.csv")[1:]  # drop the warm-up iteration
        mean = lambda k: statistics.fmean(r[k] for r in log if k in r)  # noqa: E731
        rows.append({
            "algorithm": algo, "frames": int(log[-1]["frames"]),
            "collection_fps": round(mean("time/collection_fps"), 1),
            "updates_per_s": round(mean("time/updates_per_s"), 2),
            "end_to_end_fps": round(mean("time/fps"), 1),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": 1,
        })
        print(rows[-1])
    path = RESULTS / "balance_throughput.csv"
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["algorithm"] not in args.variants] + rows
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[-1]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
