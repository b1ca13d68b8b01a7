"""How long a refused command line and ``--help`` take, for one or more checkouts side by side.

Each command runs ``python -m marl_torchrl.train <args>`` as a fresh process with ``PYTHONPATH`` set to
the checkout, alternating checkouts round by round so both see the same machine load. Writes
``benchmarks/results/cli_latency.csv`` (checkout, case, round, seconds, exit code) and ``.png`` (median
seconds per case and checkout) and prints the median per checkout and case.

    git worktree add /tmp/before 002e8c8     # the commit before the typed config
    python benchmarks/cli_latency.py --checkouts before=/tmp/before after=. --rounds 5
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "help": ["--help"],
    "unknown_algorithm": ["algorithm=qmx"],
    "bad_int": ["replay.batch_size=abc"],
    "unknown_key": ["no_such_key=1"],
    "lr_negative": ["algorithm.lr=-1"],
}


def time_case(checkout: Path, args: list[str]) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve()), "WANDB_MODE": "disabled"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "marl_torchrl.train", *args, f"hydra.run.dir={tmp}/run"],
                              cwd=tmp, env=env, capture_output=True, text=True)
        return time.perf_counter() - start, proc.returncode


def plot(rows: list[dict], names: list[str], path: Path) -> None:
    """Median seconds per case, one bar per checkout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        medians = [statistics.median(x["seconds"] for x in rows if x["checkout"] == name and x["case"] == case)
                   for case in CASES]
        ax.bar([j + i * width for j in range(len(CASES))], medians, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(CASES))], list(CASES))
    ax.set_ylabel("median seconds")
    ax.set_title("marl-train: refusals and --help, wall clock")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkouts", nargs="+", default=[f"after={ROOT}"], help="name=path pairs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli_latency.csv"))
    a = ap.parse_args()
    checkouts = dict(c.split("=", 1) for c in a.checkouts)
    rows = []
    for r in range(a.rounds):
        for case, args in CASES.items():
            for name, path in checkouts.items():
                seconds, code = time_case(Path(path), args)
                rows.append({"checkout": name, "case": case, "round": r, "seconds": round(seconds, 3), "exit": code})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(rows, list(checkouts), Path(a.out).with_suffix(".png"))
    for case in CASES:
        line = [f"{case:18s}"]
        for name in checkouts:
            times = [x["seconds"] for x in rows if x["checkout"] == name and x["case"] == case]
            line.append(f"{name}: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
        print("  ".join(line))
    print(f"wrote {a.out}; python {sys.version.split()[0]}, {os.cpu_count()} cores, {a.rounds} rounds")


if __name__ == "__main__":
    main()
