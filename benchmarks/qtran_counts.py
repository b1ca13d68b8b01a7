"""How often does each algorithm's decentralised greedy policy reach 8 in QTRAN's non-monotonic game?

``env=matrix/nonmonotonic`` (payoff [[8,-12,-12],[-12,0,0],[-12,0,0]], one step, constant state) trained
from uniform data (epsilon = 1 throughout) with the overrides of ``tests/test_matrix_games.py``
(``UNIFORM``), for every algorithm and seed, one run after the other in this process. Writes
``benchmarks/results/qtran_counts.csv`` (algorithm, seed, greedy_return, reached_8) and prints
"<algorithm>: reached 8 on k/n".

    python benchmarks/qtran_counts.py [--algorithms qmix vdn qmix_nonmono ow_qmix cw_qmix facmac qplex] \\
        [--seeds 0 1 ... 9] [--frames 6400] [--override key=value ...]

Any registered algorithm name works. The ``algorithm.*`` keys of ``UNIFORM`` (epsilon, TD(lambda),
target interval, lr) are those of the value-decomposition algorithms; an algorithm without them (e.g.
an actor-critic such as FACMAC) gets its own list in ``ALGORITHM_OVERRIDES`` instead.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_matrix_games import UNIFORM  # noqa: E402  (the tests' uniform-data overrides, one source)

RESULTS = ROOT / "benchmarks" / "results"
GAME = "matrix/nonmonotonic"
OPTIMUM = 8.0
DEFAULT_ALGORITHMS = ["qmix", "vdn", "qmix_nonmono", "ow_qmix", "cw_qmix", "facmac", "qplex"]

COMMON = [o for o in UNIFORM if not o.startswith("algorithm.")]  # env, model, collector, replay, eval...
Q_LEARNING = [o for o in UNIFORM if o.startswith("algorithm.")]  # epsilon = 1, 1-step targets, lr...
# algorithm name -> its algorithm.* overrides, replacing Q_LEARNING: FACMAC has no lr / hard-target keys
# (actor_lr, critic_lr and soft targets keep their defaults) but explores uniformly with the same epsilon.
ALGORITHM_OVERRIDES: dict[str, list[str]] = {
    "facmac": ["algorithm.eps_start=1.0", "algorithm.eps_end=1.0", "algorithm.td_lambda=0"],
}


def overrides_for(algorithm: str) -> list[str]:
    """The overrides an algorithm trains with (besides algorithm, env, seed and total_frames)."""
    return COMMON + ALGORITHM_OVERRIDES.get(algorithm, Q_LEARNING)


def train_once(algorithm: str, seed: int, frames: int, out: Path, extra: list[str]) -> float:
    """One training run; returns the final greedy evaluation return."""
    from hydra import compose, initialize_config_dir

    from marl_torchrl.config import CONFIG_DIR
    from marl_torchrl.train import run

    overrides = [f"algorithm={algorithm}", f"env={GAME}", f"seed={seed}", f"total_frames={frames}"]
    overrides += overrides_for(algorithm) + list(extra)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return float(run(cfg, out / f"{algorithm}_s{seed}")["eval/ep_reward"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithms", nargs="+", default=DEFAULT_ALGORITHMS)
    p.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--frames", type=int, default=6400, help="total_frames per run (6400: 1000 updates)")
    p.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every run")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "qtran")
    p.add_argument("--csv", type=Path, default=RESULTS / "qtran_counts.csv")
    args = p.parse_args()
    rows = []
    for algorithm in args.algorithms:
        for seed in args.seeds:
            start = time.perf_counter()
            ret = train_once(algorithm, seed, args.frames, args.out, args.override)
            reached = abs(ret - OPTIMUM) < 0.1
            rows.append({"algorithm": algorithm, "seed": seed, "greedy_return": ret, "reached_8": int(reached)})
            print(f"{algorithm} seed {seed}: greedy return {ret:g} ({time.perf_counter() - start:.1f}s)", flush=True)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    if args.csv.exists():  # keep the rows of algorithms not run this time
        with open(args.csv, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r["algorithm"] not in args.algorithms]
        rows = kept + rows
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["algorithm", "seed", "greedy_return", "reached_8"])
        writer.writeheader()
        writer.writerows(rows)
    for algorithm in dict.fromkeys(r["algorithm"] for r in rows):
        mine = [r for r in rows if r["algorithm"] == algorithm]
        print(f"{algorithm}: reached 8 on {sum(int(r['reached_8']) for r in mine)}/{len(mine)}")
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
