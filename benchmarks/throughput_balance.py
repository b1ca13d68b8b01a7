"""Throughput on VMAS balance (4 agents, GRU agents, CPU, one torch thread), one run at a time.

The learning benchmark runs two jobs side by side, so its frames/s figures include contention. This
script runs each variant alone for a short budget with the same settings and writes
``benchmarks/results/balance_throughput.csv`` (and ``.png``): collection frames/s, gradient updates/s and
end-to-end frames/s (mean over iterations after the first, which includes warm-up), and with ``qmix``
among the variants each one's end-to-end ratio to QMIX's.

``--rounds N`` runs the variants in turn N times (alternating, so machine load hits all alike); the ratio
to QMIX is taken within each round, and the CSV holds the median over rounds (min and max beside it).
``--preset`` runs the PQN variants with their balance preset (``experiment=balance``:
``configs/experiment_algorithm/balance/``, its own env batch and rollout shape) instead of the replay
algorithms' 64 envs x 100 steps; ``--set`` adds overrides to the PQN variants (to try other settings).

    python benchmarks/throughput_balance.py --frames 64000
    python benchmarks/throughput_balance.py --variants qmix_nonmono ow_qmix cw_qmix facmac facmac_continuous
    python benchmarks/throughput_balance.py --variants qmix pqn_vdn pqn_qmix --preset --rounds 3 --frames 64000

Rows of variants not run this time are kept, so the CSV collects every variant measured. Each round is one
``marl-train -m`` run per variant with Hydra's basic launcher (``multirun.py``), in ``<out>/round<N>/<variant>_s0``
with ``resume=auto``: a run already finished there is read, not run again (remove ``<out>`` to measure again).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
from pathlib import Path

import numpy as np
from learning_balance import COMMON, RESULTS, ROOT, VARIANTS, specs
from multirun import group_variants, launch, sweep_command

from marl_torchrl.plots import read_log

ROLLOUT_KEYS = ("env.num_envs=", "collector.frames_per_batch=", "train.updates_per_batch=", "replay.")


def run_once(variant: str, rnd: int, args) -> dict:
    """One run of ``variant`` (round ``rnd``); its mean figures over iterations after the first (warm-up)."""
    common = [*COMMON, f"total_frames={args.frames}"]
    (preset, extra), = specs([variant]).values()
    if variant.startswith("pqn"):
        extra = [*extra, *args.set]
        if args.preset:  # the preset's rollout shape, not the replay algorithms' one
            common = [c for c in common if not c.startswith(ROLLOUT_KEYS)] + ["experiment=balance"]
    (group,) = group_variants({variant: (preset, extra)})
    out = (args.out / f"round{rnd}").resolve()
    if launch([(group, sweep_command(group, [0], out, 1, common))], out / "sweep.log"):
        raise SystemExit(f"{variant} failed or was interrupted; see {out / 'sweep.log'}")
    log = read_log(out / f"{variant}_s0" / "training_log.csv")

    def mean(key):
        vals = log[key][1:]
        return float(vals[np.isfinite(vals)].mean())

    return {"frames": int(log["frames"][-1]), "collection_fps": mean("time/collection_fps"),
            "updates_per_s": mean("time/updates_per_s"), "end_to_end_fps": mean("time/fps")}


def summarise(variant: str, runs: list[dict], qmix: list[dict] | None, args) -> dict:
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    row = {"algorithm": variant, "frames": runs[-1]["frames"], "collection_fps": round(med("collection_fps"), 1),
           "updates_per_s": round(med("updates_per_s"), 2), "end_to_end_fps": round(med("end_to_end_fps"), 1)}
    if qmix is not None:
        ratios = [r["end_to_end_fps"] / q["end_to_end_fps"] for r, q in zip(runs, qmix)]
        row.update({"vs_qmix": round(statistics.median(ratios), 2), "vs_qmix_min": round(min(ratios), 2),
                    "vs_qmix_max": round(max(ratios), 2)})
    settings = "balance preset" if args.preset and variant.startswith("pqn") else "64 envs x 100 steps"
    if args.set and variant.startswith("pqn"):
        settings += " + " + " ".join(args.set)
    row.update({"settings": settings, "rounds": len(runs), "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(), "torch_threads": 1, "load_avg_1min_at_end": round(os.getloadavg()[0], 2)})
    return row


def write(rows: list[dict], variants: list[str]) -> None:
    """The CSV (rows of variants not run this time kept) and a PNG of this invocation's variants only
    (rows measured at other times, under other loads, are not comparable)."""
    plot(rows, RESULTS / "balance_throughput.png")
    path = RESULTS / "balance_throughput.csv"
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["algorithm"] not in variants] + rows
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.5))
    names = [f"{r['algorithm']} ({r.get('settings') or '64 envs x 100 steps'})" for r in rows]
    bars = ax.barh(names, [float(r["end_to_end_fps"]) for r in rows], color="tab:blue")
    if all(r.get("vs_qmix") not in (None, "") for r in rows):
        ax.bar_label(bars, [f"{float(r['vs_qmix']):.2f}x QMIX" for r in rows], padding=3)
    ax.set_xlabel("end-to-end frames/s (VMAS balance, 1 torch thread, median of rounds)")
    ax.invert_yaxis()
    fig.tight_layout()
    ax.margins(x=0.2)
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["qmix", "vdn", "iql"], choices=sorted(VARIANTS))
    p.add_argument("--frames", type=int, default=64_000)
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds over the variants")
    p.add_argument("--preset", action="store_true", help="PQN variants with their balance preset (experiment=balance)")
    p.add_argument("--set", nargs="*", default=[], help="extra overrides for the PQN variants")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "throughput")
    args = p.parse_args()
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    for rnd in range(args.rounds):
        for variant in args.variants:
            runs[variant].append(run_once(variant, rnd, args))
            print(rnd, variant, {k: round(v, 1) for k, v in runs[variant][-1].items()}, flush=True)
    qmix = runs.get("qmix")
    rows = [summarise(v, runs[v], qmix, args) for v in args.variants]
    for row in rows:
        print(row)
    write(rows, args.variants)


if __name__ == "__main__":
    main()
