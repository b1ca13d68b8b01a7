"""Pool the per-seed rows of several ``compare_benchmarl.py`` result files (e.g. seeds 0-2, 3-5, 6-7 run
in separate invocations) and report each metric per library over all seeds: mean, std, n, and for the
final greedy return the difference ours - theirs with a 95% interval (Welch's t, normal quantile for
the degrees of freedom). Writes ``<out>.csv`` (one row per library and seed, then the summary rows) and
``<out>.png`` (each seed's final return, both libraries).

    python benchmarks/combine_seeds.py benchmarks/results/benchmarl_qmix_mlp.csv \\
        benchmarks/results/benchmarl_qmix_mlp_seeds3-5.csv benchmarks/results/benchmarl_qmix_mlp_seeds6-7.csv \\
        --out benchmarks/results/benchmarl_qmix_mlp_8seeds
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

METRICS = ["end_to_end_fps", "collection_fps", "updates_per_s", "final_return"]
LIBS = ("BenchMARL", "marl-torchrl")
T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
        14: 2.14, 16: 2.12, 20: 2.09, 30: 2.04}  # Student's t, two-sided 95%


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t at the nearest tabulated degrees of freedom at or below ``df``."""
    keys = [k for k in T975 if k <= max(1.0, df)]
    return T975[max(keys)] if df < 30 else 1.96


def load(paths: list[Path]) -> list[dict]:
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [{**r, "source": p.name} for r in csv.DictReader(f) if r["library"] in LIBS]
    seen = set()
    for r in rows:
        key = (r["library"], r["seed"])
        if key in seen:
            raise SystemExit(f"error: {r['library']} seed {r['seed']} appears twice")
        seen.add(key)
        for m in METRICS:
            r[m] = float(r[m])
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for m in METRICS:
        vals = {lib: [r[m] for r in rows if r["library"] == lib] for lib in LIBS}
        mean = {lib: statistics.fmean(v) for lib, v in vals.items()}
        sd = {lib: statistics.stdev(v) if len(v) > 1 else float("nan") for lib, v in vals.items()}
        row = {"metric": m, **{f"{lib}_{k}": x for lib in LIBS for k, x in
                               (("mean", mean[lib]), ("std", sd[lib]), ("n", len(vals[lib])))}}
        if m == "final_return":
            se2 = {lib: sd[lib] ** 2 / len(vals[lib]) for lib in LIBS}
            se = math.sqrt(sum(se2.values()))
            df = se ** 4 / sum(s ** 2 / (len(vals[lib]) - 1) for lib, s in se2.items())
            diff = mean["marl-torchrl"] - mean["BenchMARL"]
            row.update(difference=diff, ci95_low=diff - t975(df) * se, ci95_high=diff + t975(df) * se)
        else:
            row.update(ratio=mean["marl-torchrl"] / mean["BenchMARL"])
        out.append(row)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output stem (csv and png)")
    a = p.parse_args()
    rows = load(a.files)
    summ = summary(rows)
    for s in summ:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()))
    with open(a.out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["library", "seed", *METRICS, "source"])
        w.writeheader()
        w.writerows({k: r[k] for k in w.fieldnames} for r in rows)
        for s in summ:
            f.write("# " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for i, lib in enumerate(LIBS):
        vals = [r["final_return"] for r in rows if r["library"] == lib]
        ax.scatter([i] * len(vals), vals, color=("tab:grey", "tab:blue")[i], s=18, zorder=3)
        ax.errorbar(i + 0.15, statistics.fmean(vals), yerr=statistics.stdev(vals), fmt="o", color="k", capsize=4)
    ret = summ[-1]
    ax.set_xticks([0, 1], ["BenchMARL", "ours"])
    ax.set_ylabel("final greedy return")
    ax.set_title(f"final greedy return, {len(rows) // 2} seeds: ours - theirs = {ret['difference']:.2f}\n"
                 f"95% interval [{ret['ci95_low']:.1f}, {ret['ci95_high']:.1f}]", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out.with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main()
