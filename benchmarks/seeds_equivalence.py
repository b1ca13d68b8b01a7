"""Do K seeds trained in one process (``num_seeds=K``) learn what K separate runs learn? VMAS balance, QMIX.

Runs, with the same overrides, one ``marl-train num_seeds=K seed=0`` (seeds 0..K-1 stacked: batched
collection, stacked gradient steps) and the K ordinary runs ``marl-train -m seed=0,...,K-1`` (a multirun,
``--jobs`` at a time), then compares their final greedy returns (``eval.final_episodes`` episodes each):

- per path: mean over seeds with a 95% percentile-bootstrap interval (``marl_torchrl.report.stats``);
- paired by seed (seed s starts from the same parameters and env seeds on both paths): the mean of
  stacked - separate with its 95% bootstrap interval, and the largest per-seed gap;
- the greedy evaluation curves of every seed on both paths.

Both paths are resumable: the stacked run is skipped when every seed holds its final model, the multirun
skips finished jobs (``resume=auto``). Writes ``benchmarks/results/seeds_equivalence.{csv,png}``.

    python benchmarks/seeds_equivalence.py --num-seeds 4 --frames 200000 --jobs 2
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from multirun import Group, launch, sweep_command  # noqa: E402

from marl_torchrl.report.collect import load_run  # noqa: E402
from marl_torchrl.report.stats import bootstrap_ci  # noqa: E402
from marl_torchrl.report.tables import write_csv  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
METRIC = "eval/ep_reward"


def common(frames: int, extra=()) -> list[str]:
    """The overrides both paths share (``algorithm=qmix`` is the multirun's own)."""
    return ["env=vmas/balance", "threads=1", "logger=[csv]", f"total_frames={frames}", "eval.interval_frames=50000",
            "eval.final_episodes=128", "checkpoint.interval_frames=1000000", *extra]


def run_stacked(k: int, overrides: list[str], out: Path) -> None:
    if all((out / f"seed_{s}" / "models" / "final_model.pt").is_file() for s in range(k)):
        print(f"stacked K={k}: done, skipped")
        return
    cmd = [sys.executable, "-m", "marl_torchrl.train", "algorithm=qmix", *overrides, f"num_seeds={k}", "seed=0",
           f"hydra.run.dir={out}"]
    print("stacked:", " ".join(cmd), flush=True)
    with open(out.parent / "stacked.log", "a") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)


def run_separate(k: int, overrides: list[str], out: Path, jobs: int) -> None:
    group = Group(["qmix"], "qmix", [], "qmix")
    cmd = sweep_command(group, range(k), out, jobs, common=overrides)
    print("separate:", " ".join(cmd), flush=True)
    if launch([(group, cmd)], out.parent / "separate.log") != 0:
        raise SystemExit(f"the separate runs failed: see {out.parent / 'separate.log'}")


def compare(k: int, stacked_dir: Path, separate_dir: Path, name: str) -> None:
    stacked = [load_run(stacked_dir / f"seed_{s}", METRIC) for s in range(k)]
    separate = [load_run(separate_dir / f"qmix_s{s}", METRIC) for s in range(k)]
    broken = [r for r in stacked + separate if isinstance(r, str)]
    if broken:
        raise SystemExit(f"unfinished runs: {broken}")
    a, b = np.array([r.final for r in stacked]), np.array([r.final for r in separate])
    rows = []
    for label, x in (("stacked", a), ("separate", b), ("stacked - separate (paired)", a - b)):
        _, lo, hi = bootstrap_ci([x.tolist()])
        rows.append({"path": label, "n_seeds": k, "mean": round(float(x.mean()), 3), "ci_lo": round(lo, 3),
                     "ci_hi": round(hi, 3), "per_seed": " ".join(f"{v:.3f}" for v in x)})
    rows.append({"path": "largest per-seed gap", "n_seeds": k, "mean": round(float(np.abs(a - b).max()), 3),
                 "ci_lo": "", "ci_hi": "", "per_seed": ""})
    RESULTS.mkdir(exist_ok=True)
    write_csv(rows, list(rows[0]), RESULTS / f"{name}.csv")
    for row in rows:
        print(row)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for s, (x, y) in enumerate(zip(stacked, separate)):
        color = f"C{s}"
        ax.plot(x.frames, x.values, color=color, label=f"seed {s} stacked")
        ax.plot(y.frames, y.values, color=color, ls="--", label=f"seed {s} separate")
    ax.set_xlabel("frames per seed")
    ax.set_ylabel("greedy return")
    ax.set_title(f"VMAS balance, QMIX: num_seeds={k} (solid) against {k} separate runs (dashed)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    print(f"wrote {RESULTS / name}.csv and .png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--num-seeds", type=int, default=4)
    ap.add_argument("--frames", type=int, default=200000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "seeds_equivalence")
    ap.add_argument("--name", default="seeds_equivalence", help="results file name")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for both paths (smoke tests)")
    args = ap.parse_args()
    out = args.out / f"k{args.num_seeds}_f{args.frames}"
    out.mkdir(parents=True, exist_ok=True)
    overrides = common(args.frames, args.extra)
    run_separate(args.num_seeds, overrides, out / "separate", args.jobs)
    run_stacked(args.num_seeds, overrides, out / "stacked")
    compare(args.num_seeds, out / "stacked", out / "separate", args.name)


if __name__ == "__main__":
    main()
