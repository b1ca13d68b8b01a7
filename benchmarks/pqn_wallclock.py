"""PQN against replay-based QMIX at equal wall-clock on one task: every variant of a seed trains at the same
time, side by side on the same cores, each stopped by ``train.max_seconds``; then ``marl-report`` over all
finished runs (final greedy return at equal wall-clock, 95% intervals, probability of improvement, curves
against seconds).

    python benchmarks/pqn_wallclock.py                                   # balance, 600 s, seeds 0 1 2
    python benchmarks/pqn_wallclock.py --seconds 20 --seeds 0 --out /tmp/wc --results /tmp/wc/results \\
        --set total_frames=100000 eval.interval_frames=6400 eval.final_episodes=null   # a quick check

One multirun per seed: ``marl-train -m experiment=<task> algorithm=<the seed's unfinished variants>
seed=<s> train.max_seconds=<seconds> threads=1 logger=[csv] hydra/launcher=joblib`` with one joblib worker
per variant, so the variants share the machine equally (each gets its experiment preset's settings for that
algorithm, e.g. ``experiment_algorithm/balance/pqn_vdn.yaml``). Job dirs are ``<out>/<variant>_s<seed>``;
a dir with ``models/final_model.pt`` is finished and skipped, anything else is started afresh, so the same
command continues an interrupted benchmark. ``--set`` adds overrides to every job. Results go to
``<results>/pqn_wallclock_<task>/`` (``runs.csv``: frames, updates and final return per job; ``report.md``, ``final.csv``, ``prob_improvement.csv``, ``curves_*.png``)
with the load average and cores in ``machine.txt``. Needs the sweep extra (joblib launcher).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marl_torchrl.config.launchers import missing_extra  # noqa: E402  (torch-free)
from marl_torchrl.plots import read_log  # noqa: E402


def job_dir(out: Path, variant: str, seed: int) -> Path:
    return out / f"{variant}_s{seed}"


def pending(out: Path, variants: list[str], seed: int) -> list[str]:
    """The variants of ``seed`` without a final model; their stale dirs are removed."""
    todo = []
    for v in variants:
        d = job_dir(out, v, seed)
        if (d / "models" / "final_model.pt").is_file():
            continue
        if d.exists():
            shutil.rmtree(d)
        todo.append(v)
    return todo


def command(task: str, variants: list[str], seed: int, seconds: float, out: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "marl_torchrl.train", "-m", f"experiment={task}", f"algorithm={','.join(variants)}",
            f"seed={seed}", f"train.max_seconds={seconds}", "threads=1", "logger=[csv]",
            "hydra/launcher=joblib", f"hydra.launcher.n_jobs={len(variants)}", f"hydra.sweep.dir={out}",
            "hydra.sweep.subdir=${algorithm.name}_s${seed}", *extra]


def write_runs(out: Path, path: Path) -> None:
    """One row per finished job: how far it got in its seconds (frames, gradient steps) and its final return."""
    rows = ["variant,seed,frames,num_updates,elapsed_s,final_eval_return"]
    for d in sorted(out.glob("*_s*")):
        if (d / "models" / "final_model.pt").is_file():
            log = read_log(d / "training_log.csv")
            last = {k: v[~np.isnan(v)][-1] if (~np.isnan(v)).any() else np.nan for k, v in log.items()}
            variant, seed = d.name.rsplit("_s", 1)
            rows.append(f"{variant},{seed},{last['frames']:.0f},{last.get('train/num_updates', np.nan):.0f},"
                        f"{last['time/elapsed_s']:.1f},{last['eval/ep_reward']:.4f}")
    path.write_text("\n".join(rows) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="balance", help="an experiment preset (default %(default)s)")
    p.add_argument("--variants", nargs="+", default=["qmix", "pqn_vdn", "pqn_qmix"], help="algorithm presets")
    p.add_argument("--seconds", type=float, default=600.0, help="train.max_seconds of every job")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "pqn_wallclock")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--set", nargs="*", default=[], help="overrides added to every job")
    args = p.parse_args(argv)
    why = missing_extra("joblib")
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    out = args.out / args.task
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    failed = 0
    for seed in args.seeds:
        todo = pending(out, args.variants, seed)
        if not todo:
            print(f"seed {seed}: all finished")
            continue
        print(f"seed {seed}: {', '.join(todo)} side by side for {args.seconds:g} s", flush=True)
        load = os.getloadavg()[0]
        proc = subprocess.run(command(args.task, todo, seed, args.seconds, out, args.set), cwd=ROOT, env=env)
        failed += proc.returncode != 0
        with open(out / "machine.log", "a") as f:
            f.write(f"seed={seed} variants={','.join(todo)} cores={os.cpu_count()} loadavg_1m_before={load:.2f} "
                    f"loadavg_1m_after={os.getloadavg()[0]:.2f} exit={proc.returncode}\n")
    report = args.results / f"pqn_wallclock_{args.task}"
    rc = subprocess.run([sys.executable, "-m", "marl_torchrl.report", str(out), "--out", str(report)],
                        cwd=ROOT, env=env).returncode
    write_runs(out, report / "runs.csv")
    if (out / "machine.log").exists():
        shutil.copy(out / "machine.log", report / "machine.txt")
    return 1 if failed or rc else 0


if __name__ == "__main__":
    sys.exit(main())
