"""PQN against replay-based QMIX at equal wall-clock on one task: every variant of a seed trains at the same
time, side by side on the same cores, each stopped by ``train.max_seconds``; then ``marl-report`` over all
finished runs (final greedy return at equal wall-clock, 95% intervals, probability of improvement, curves
against seconds).

    python benchmarks/pqn_wallclock.py                                   # balance, 600 s, seeds 0 1 2
    python benchmarks/pqn_wallclock.py --seconds 20 --seeds 0 --out /tmp/wc --results /tmp/wc/results \\
        --frames 100000 --set eval.interval_frames=6400 eval.final_episodes=null       # a quick check
    python benchmarks/pqn_wallclock.py --frames 3000000 --set algorithm.eps_anneal_frames=200000  # every job 600 s

One multirun per seed (``benchmarks/multirun.py``): ``marl-train -m experiment=<task> algorithm=<variants>
seed=<s> train.max_seconds=<seconds> threads=1 logger=[csv] resume=auto hydra/launcher=joblib`` with one joblib
worker per variant, so the variants share the machine equally (each gets its experiment preset's settings for
that algorithm, e.g. ``experiment_algorithm/balance/pqn_vdn.yaml``). Job dirs are ``<out>/<task>/<variant>_s<seed>``;
``resume=auto`` skips a job that spent its seconds and continues an interrupted one (its clock is summed over
resumes), so the same command continues an interrupted benchmark; a continued job may then have had fewer
neighbours than the others, which the load lines of ``machine.txt`` show. ``--set`` adds overrides to every
job. A job that reaches its ``total_frames`` before its seconds stops early, and the others then have the
cores to themselves: ``runs.csv`` says what stopped each job (``time`` or ``frames``) and the script warns; pass
``--frames`` above what every variant reaches in the time (with the presets' exploration pinned in frames,
e.g. ``--set algorithm.eps_anneal_frames=200000``, as a fraction it would stretch with ``--frames``). Results
go to ``<results>/pqn_wallclock_<task>/`` (``runs.csv``: frames, updates, what stopped it and final return per
job; ``report.md``, ``final.csv``, ``prob_improvement.csv``, ``curves_*.png`` from ``marl-report``; the load
average and cores in ``machine.txt``). Needs the sweep extra (joblib launcher).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from multirun import group_variants, launch, sweep_command  # noqa: E402

from marl_torchrl.config.launchers import missing_extra  # noqa: E402  (torch-free)
from marl_torchrl.plots import last_value, read_log  # noqa: E402


def write_runs(out: Path, path: Path, seconds: float) -> list[str]:
    """One row per finished job: how far it got in its seconds (frames, gradient steps), what stopped it and its
    final return; returns the jobs that ran out of frames before their seconds."""
    rows = ["variant,seed,frames,num_updates,elapsed_s,stopped_by,final_eval_return"]
    early = []
    for d in sorted(out.glob("*_s*")):
        if (d / "models" / "final_model.pt").is_file():
            log = read_log(d / "training_log.csv")
            frames, updates, elapsed, final = (last_value(log, k) for k in (
                "frames", "train/num_updates", "time/elapsed_s", "eval/ep_reward"))
            variant, seed = d.name.rsplit("_s", 1)
            stopped = "time" if elapsed >= seconds else "frames"  # the loop's own rule (RunState.spent)
            if stopped == "frames":
                early.append(f"{d.name} ({elapsed:.0f} s)")
            rows.append(f"{variant},{seed},{frames:.0f},{updates:.0f},{elapsed:.1f},{stopped},{final:.4f}")
    path.write_text("\n".join(rows) + "\n")
    return early


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="balance", help="an experiment preset (default %(default)s)")
    p.add_argument("--variants", nargs="+", default=["qmix", "pqn_vdn", "pqn_qmix"], help="algorithm presets")
    p.add_argument("--seconds", type=float, default=600.0, help="train.max_seconds of every job")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "pqn_wallclock")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--frames", type=int, default=None,
                   help="total_frames of every job (default: each preset's own budget)")
    p.add_argument("--set", nargs="*", default=[], help="overrides added to every job")
    args = p.parse_args(argv)
    why = missing_extra("joblib")
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    out = args.out / args.task
    common = [f"experiment={args.task}", f"train.max_seconds={args.seconds}", "threads=1", "logger=[csv]",
              *([f"total_frames={args.frames}"] if args.frames else []), *args.set]
    (group,) = group_variants({v: (v, []) for v in args.variants})
    status = 0
    for seed in args.seeds:
        load = os.getloadavg()[0]
        code = launch([(group, sweep_command(group, [seed], out, len(args.variants), common))], out / "sweep.log")
        with open(out / "machine.log", "a") as f:
            f.write(f"seed={seed} variants={','.join(args.variants)} cores={os.cpu_count()} "
                    f"loadavg_1m_before={load:.2f} loadavg_1m_after={os.getloadavg()[0]:.2f} exit={code}\n")
        if code == 130:
            return 130
        status = max(status, code)
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg"}
    report = args.results / f"pqn_wallclock_{args.task}"
    rc = subprocess.run([sys.executable, "-m", "marl_torchrl.report", str(out), "--out", str(report)],
                        cwd=ROOT, env=env).returncode
    early = write_runs(out, report / "runs.csv", args.seconds)
    if early:
        print(f"warning: {', '.join(early)} reached total_frames before {args.seconds:.0f} s; the other jobs then had "
              "the cores to themselves. Rerun with --frames above what every variant reaches.", file=sys.stderr)
    if (out / "machine.log").exists():
        shutil.copy(out / "machine.log", report / "machine.txt")
    return 1 if status or rc else 0


if __name__ == "__main__":
    sys.exit(main())
