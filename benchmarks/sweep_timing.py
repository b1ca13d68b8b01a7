"""Wall time of one small sweep with Hydra's basic launcher (jobs one after another) and with joblib (jobs in
parallel worker processes), run back to back in one invocation so both see the same machine.

The sweep: ``marl-train -m algorithm=qmix,vdn seed=0,1 env=vmas/balance total_frames=<frames> threads=1``
(4 jobs), each launcher as its own ``marl-train`` process writing to its own sweep dir. Writes
``<results>/sweep_timing.csv`` (one row per launcher and round: wall seconds, finished jobs, the jobs' own
``time/elapsed_s`` summed, speed-up over the basic launcher of the same round, cores, load average before)
and ``sweep_timing.png``, and prints the table. Needs the sweep extra (``pip install -e ".[sweep]"``).

    python benchmarks/sweep_timing.py                                # 20k frames per job, joblib n_jobs=2
    python benchmarks/sweep_timing.py --frames 640 --results /tmp/sweep_timing \\
        --set env.num_envs=8 collector.frames_per_batch=320 eval.interval_frames=0   # a quick check
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marl_torchrl.config.launchers import missing_extra  # noqa: E402  (torch-free)

FIELDS = ["round", "launcher", "n_jobs", "jobs", "frames_per_job", "wall_s", "jobs_finished", "sum_job_elapsed_s",
          "speedup_vs_basic", "cores", "loadavg_1m_before", "exit"]


def job_elapsed(run_dir: Path) -> float | None:
    """The last ``time/elapsed_s`` of a run's training_log.csv (the job's own training time)."""
    log = run_dir / "training_log.csv"
    if not log.exists():
        return None
    with open(log, newline="") as f:
        values = [r.get("time/elapsed_s") for r in csv.DictReader(f)]
    values = [float(v) for v in values if v not in (None, "")]
    return values[-1] if values else None


def time_sweep(launcher_args: list[str], sweep_args: list[str], sweep_dir: Path) -> tuple[float, int, str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg"}
    argv = [sys.executable, "-m", "marl_torchrl.train", "-m", *launcher_args, *sweep_args,
            f"hydra.sweep.dir={sweep_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['launcher']} (n_jobs={r['n_jobs']})" + (f", round {r['round']}" if r["round"] else "") for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh(labels, [r["wall_s"] for r in rows], color=["tab:gray" if r["launcher"] == "basic" else "tab:blue"
                                                        for r in rows])
    for i, r in enumerate(rows):
        ax.text(r["wall_s"], i, f" {r['wall_s']:.0f} s", va="center")
    ax.set_xlabel("wall seconds for the whole sweep")
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000, help="total_frames per job (default 20000)")
    ap.add_argument("--algorithms", nargs="+", default=["qmix", "vdn"])
    ap.add_argument("--seeds", nargs="+", default=["0", "1"])
    ap.add_argument("--env", default="vmas/balance")
    ap.add_argument("--n-jobs", type=int, default=2, help="joblib's hydra.launcher.n_jobs (default 2)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every job")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"),
                    help="folder for sweep_timing.csv and .png (default benchmarks/results)")
    ap.add_argument("--sweeps", default=None, help="folder for the sweep dirs (default: a temporary folder)")
    a = ap.parse_args()
    reason = missing_extra("joblib")
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        raise SystemExit(2)

    sweep_args = [f"algorithm={','.join(a.algorithms)}", f"seed={','.join(a.seeds)}", f"env={a.env}",
                  f"total_frames={a.frames}", "threads=1", *a.set]
    jobs = len(a.algorithms) * len(a.seeds)
    launchers = {"basic": ([], 1), "joblib": (["hydra/launcher=joblib", f"hydra.launcher.n_jobs={a.n_jobs}"], a.n_jobs)}
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="sweep_timing_") as tmp:
        sweeps = Path(a.sweeps or tmp)
        for rnd in range(a.rounds):
            basic_wall = None
            for name, (launcher_args, n_jobs) in launchers.items():
                load = os.getloadavg()[0]
                sweep_dir = sweeps / f"{name}_r{rnd}"
                wall, code, stderr = time_sweep(launcher_args, sweep_args, sweep_dir)
                elapsed = [e for e in (job_elapsed(d) for d in sweep_dir.iterdir() if d.is_dir()) if e is not None] \
                    if sweep_dir.is_dir() else []
                if code != 0:
                    failed = True
                    print(f"{name}: exit {code}\n{stderr[-2000:]}", file=sys.stderr)
                basic_wall = wall if name == "basic" else basic_wall
                rows.append({"round": rnd, "launcher": name, "n_jobs": n_jobs, "jobs": jobs,
                             "frames_per_job": a.frames, "wall_s": round(wall, 1), "jobs_finished": len(elapsed),
                             "sum_job_elapsed_s": round(sum(elapsed), 1),
                             "speedup_vs_basic": round(basic_wall / wall, 2) if basic_wall else "",
                             "cores": os.cpu_count(), "loadavg_1m_before": round(load, 2), "exit": code})
    out = Path(a.results)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep_timing.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    plot(rows, out / "sweep_timing.png", f"{jobs} jobs ({'/'.join(a.algorithms)} x seeds {'/'.join(a.seeds)}), "
                                          f"{a.env}, {a.frames} frames each, threads=1, {os.cpu_count()} cores")
    for r in rows:
        print("  ".join(f"{k}={r[k]}" for k in FIELDS))
    print(f"wrote {out / 'sweep_timing.csv'} and .png; python {sys.version.split()[0]}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
