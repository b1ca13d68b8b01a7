"""Throughput on VMAS balance (4 agents, GRU agents, CPU, one torch thread), one run at a time.

The learning benchmark runs two jobs side by side, so its frames/s figures include contention. This
script runs each algorithm alone for a short budget with the same settings and writes
``benchmarks/results/balance_throughput.csv``: collection frames/s, gradient updates/s and
end-to-end frames/s (mean over iterations after the first, which includes warm-up).

    python benchmarks/throughput_balance.py --frames 64000
    python benchmarks/throughput_balance.py --variants qmix_nonmono ow_qmix cw_qmix facmac facmac_continuous

Rows of variants not run this time are kept, so the CSV collects every variant measured. The runs are one
``marl-train -m`` sweep per set of variant overrides with Hydra's basic launcher (jobs one after another;
``multirun.py``), in ``<out>/<variant>_s0`` with ``resume=auto``: a run already finished there is read, not
run again (remove its dir to measure again).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path

import numpy as np
from learning_balance import COMMON, RESULTS, ROOT, VARIANTS, specs
from multirun import group_variants, launch, sweep_command

from marl_torchrl.plots import read_log


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["qmix", "vdn", "iql"], choices=sorted(VARIANTS))
    p.add_argument("--frames", type=int, default=64_000)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "throughput")
    args = p.parse_args()
    out = args.out.resolve()
    common = [*COMMON, f"total_frames={args.frames}"]
    if launch([(g, sweep_command(g, [0], out, 1, common)) for g in group_variants(specs(args.variants))],
              out / "sweep.log"):
        raise SystemExit(f"a run failed or was interrupted; see {out / 'sweep.log'}")
    rows = []
    for algo in args.variants:
        log = read_log(out / f"{algo}_s0" / "training_log.csv")

        def mean(key):  # over the iterations after the first (warm-up)
            vals = log[key][1:]
            return float(vals[np.isfinite(vals)].mean())

        rows.append({
            "algorithm": algo, "frames": int(log["frames"][-1]),
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
