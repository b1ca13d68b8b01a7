"""Reproduce a task's experiment preset: every (variant, seed) a ``marl-train`` job of a Hydra multirun, resumable;
then a per-task CSV and curve plot, and one markdown table of all tasks beside the published references.

    python benchmarks/reproduce.py --suite lbf_8x8_2p_2f_coop --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce.py --suite balance --algorithms qmix dop_continuous --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce.py --suite smax_3m --seeds 0 1 2 --dry-run    # what would be skipped/resumed/started
    python benchmarks/reproduce.py --suite lbf_8x8_2p_2f_coop --algorithms vdn --seeds 0 --frames 4000 --jobs 1 \\
        --out /tmp/repro_smoke --results /tmp/repro_smoke/results             # a smoke run
    python benchmarks/reproduce.py --table                                    # only rebuild reproduce_table.md

A suite is a task with a preset ``marl_torchrl/configs/experiment/<task>.yaml`` (env, budget, tuned settings);
``SUITES`` gives its default variants and agent count. A variant is an algorithm preset plus overrides (a
suite's ``variants``; any other name is that algorithm preset alone). The variants that share their overrides
run as one sweep (:func:`sweeps`)::

    marl-train -m experiment=<task> algorithm=<presets> seed=<seeds> <overrides> threads=1 logger=[csv] resume=auto
        hydra.sweep.dir=<out>/<task> hydra.sweep.subdir=<variant>_s<seed> hydra/launcher=joblib hydra.launcher.n_jobs=<jobs>

(``--jobs 1``: Hydra's basic launcher; ``--frames N`` adds ``total_frames=N`` and ``_f<N>`` to the job dirs, so that
short runs never count as full ones). ``resume=auto`` makes each job skip a finished run dir (final model at the
budget), continue one with a complete checkpoint, and start any other; a sweep whose jobs are all finished is
not started at all. Each sweep's output goes to ``<out>/<task>/sweep.log``; a failed job's line is printed, the
other jobs go on, and the script exits 1. Ctrl-C (or SIGTERM) sends the running sweep one SIGINT, as a terminal
would: its running jobs checkpoint, the others do not start (``marl_torchrl.sweep_stop``), and the script exits
130; the same command again continues them.

Written to ``--results`` (default benchmarks/results) from every finished run of the suite in ``--out``, earlier
invocations included: ``reproduce_<task>.csv``, ``reproduce_<task>.png`` (``_f<N>`` before the suffix with
``--frames N``, so a short run never replaces the full budget's) and ``reproduce_table.md`` over all CSVs
(see ``reproduce_table.py``: statistics from ``marl_torchrl.report``, and the published ``REFERENCES``).
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce_table import write_suite, write_table  # noqa: E402

from marl_torchrl.checkpoint import run_status  # noqa: E402
from marl_torchrl.config import CONFIG_DIR, compose_config  # noqa: E402
from marl_torchrl.registry import ConfigError  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "benchmarks" / "runs" / "reproduce"
CONTINUOUS = ["env.continuous_actions=true"]
SUITES = {  # per task: default variants, n_agents (for return_per_agent), variants that are not a bare preset
    "lbf_8x8_2p_2f_coop": {"algorithms": ["qmix", "vdn"], "n_agents": 2},
    "smax_3m": {"algorithms": ["qmix", "pqn_vdn"], "n_agents": 3},
    "simple_spread": {"algorithms": ["qmix", "vdn"], "n_agents": 3},
    "balance": {"algorithms": ["qmix", "vdn", "iql", "facmac_continuous", "dop", "dop_continuous"], "n_agents": 4,
                "variants": {"facmac_continuous": ("facmac", CONTINUOUS), "dop_continuous": ("dop", CONTINUOUS)}},
    "gridworld25": {"algorithms": ["qmix"], "n_agents": 4},
}
RUN_NAME = re.compile(r"(?P<variant>.+)_s(?P<seed>\d+)(?:_f(?P<frames>\d+))?")


@dataclass
class Sweep:
    """One ``marl-train -m`` invocation: the variants that share their overrides, every seed of each."""

    variants: list
    cmd: list


def suite(task: str) -> dict:
    return SUITES.get(task, {"algorithms": ["qmix", "vdn"], "n_agents": None})


def variant_spec(task: str, variant: str) -> tuple[str, list[str]]:
    """``(algorithm preset, extra overrides)`` of a variant."""
    return suite(task).get("variants", {}).get(variant, (variant, []))


def presets() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def run_dir(out: Path, task: str, variant: str, seed: int, frames: int | None = None) -> Path:
    return Path(out) / task / (f"{variant}_s{seed}" + (f"_f{frames}" if frames else ""))


@functools.lru_cache(maxsize=None)
def budget(task: str, variant: str, frames: int | None = None) -> int:
    """``total_frames`` of a run: ``frames`` or the preset's (raises ConfigError for a bad variant)."""
    preset, extra = variant_spec(task, variant)
    cfg = compose_config(f"experiment={task}", f"algorithm={preset}", *extra,
                         *([f"total_frames={frames}"] if frames else []))
    return int(cfg.total_frames)


def plan(task: str, variants, seeds, out: Path, frames: int | None = None) -> list[tuple[str, int, Path, str]]:
    """``(variant, seed, run dir, state)`` per job; state as ``resume=auto`` will find it (``run_status``)."""
    return [(v, s, p, run_status(p, budget(task, v, frames))[0])
            for v in variants for s in seeds for p in [run_dir(out, task, v, s, frames)]]


def sweeps(task: str, variants, seeds, out: Path, frames: int | None = None, jobs: int = 1) -> list[Sweep]:
    """The multirun invocations: one per set of extra overrides (and name suffix), e.g. on balance
    ``algorithm=qmix,vdn,dop`` and ``algorithm=facmac,dop env.continuous_actions=true`` (``<preset>_continuous``)."""
    groups: dict[tuple, list[str]] = {}
    for v in variants:
        preset, extra = variant_spec(task, v)
        name = "${algorithm.name}" + v[len(preset):] if v.startswith(preset) else v
        groups.setdefault((tuple(extra), name), []).append(v)
    tag = f"_f{frames}" if frames else ""
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []
    found = []
    for (extra, name), members in groups.items():
        algos = ",".join(dict.fromkeys(variant_spec(task, v)[0] for v in members))
        cmd = [sys.executable, "-m", "marl_torchrl.train", "-m", f"experiment={task}", f"algorithm={algos}",
               f"seed={','.join(str(s) for s in seeds)}", *extra, "threads=1", "logger=[csv]", "resume=auto",
               *([f"total_frames={frames}"] if frames else []), f"hydra.sweep.dir={Path(out) / task}",
               f"hydra.sweep.subdir={name}_s${{seed}}{tag}", *launcher]
        found.append(Sweep(members, cmd))
    return found


def finished(task: str, out: Path, frames: int | None = None) -> list[tuple[str, int, Path]]:
    """``(variant, seed, dir)`` of every done run of ``task`` in ``out`` with this ``--frames`` (None: full)."""
    found = []
    for path in sorted((Path(out) / task).glob("*_s*")):
        m = RUN_NAME.fullmatch(path.name)
        if not (path.is_dir() and m and m["frames"] == (str(frames) if frames else None)):
            continue
        try:
            if run_status(path, budget(task, m["variant"], frames))[0] == "done":
                found.append((m["variant"], int(m["seed"]), path))
        except ConfigError as err:
            print(f"skipped {path}: {err}", file=sys.stderr)
    return found


def run_sweep(sweep: Sweep, log: Path) -> int:
    """Run one sweep in its own session, its output appended to ``log``; returns its exit status. Ctrl-C or
    SIGTERM here sends the sweep one SIGINT (its running jobs checkpoint), a second one another (at once)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        print(f"$ {shlex.join(sweep.cmd)}", file=f, flush=True)
        proc = subprocess.Popen(sweep.cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def forward(signum, frame):
        print(f"{signal.Signals(signum).name}: asking the sweep's running jobs to checkpoint and stop "
              "(again: at once); the same command again continues them", file=sys.stderr, flush=True)
        os.killpg(proc.pid, signal.SIGINT)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def job_lines(log: Path, since: int) -> list[str]:
    """The jobs' own one-line results in ``log`` after byte ``since``: failures, interruptions, skips."""
    text = log.read_bytes()[since:].decode(errors="replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.startswith(("error:", "job ", "resume=auto:", "done:"))]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", help=f"a task with a preset in {CONFIG_DIR / 'experiment'}")
    p.add_argument("--algorithms", nargs="+", help="variants (default: the suite's)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time (joblib launcher; 1: Hydra's basic launcher)")
    p.add_argument("--frames", type=int, help="total_frames for a shorter run (default: the preset's budget)")
    p.add_argument("--out", type=Path, default=OUT, help="where the run dirs go (default %(default)s)")
    p.add_argument("--results", type=Path, default=RESULTS, help="where the CSV/PNG/table go (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the commands, run nothing")
    p.add_argument("--table", action="store_true", help="only rebuild reproduce_table.md from the CSVs in --results")
    return p


def error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    args.out, args.results = args.out.resolve(), args.results.resolve()  # the runs' cwd is the repo root
    if args.table:
        print(f"table: {write_table(args.results)}")
        return 0
    if not args.suite:
        return error("name --suite <task> (or --table)")
    if args.suite not in presets():
        why = "its preset is not written yet" if args.suite in SUITES else "unknown task"
        return error(f"--suite {args.suite}: {why}, no configs/experiment/{args.suite}.yaml "
                     f"(presets: {' '.join(presets())})")
    if args.jobs < 1:
        return error(f"--jobs must be at least 1, got {args.jobs}")
    variants = args.algorithms or suite(args.suite)["algorithms"]
    try:
        jobs = plan(args.suite, variants, args.seeds, args.out, args.frames)
    except ConfigError as err:
        return error(str(err))
    for variant, seed, path, state in jobs:
        print(f"{variant} s{seed}: " + {"done": "done, skipped", "resume": f"resume {path}", "fresh": "start"}[state])
    todo = {v for v, _, _, state in jobs if state != "done"}
    status, log = 0, args.out / args.suite / "sweep.log"
    for sweep in sweeps(args.suite, variants, args.seeds, args.out, args.frames, args.jobs):
        if not todo & set(sweep.variants):
            continue
        print(f"sweep of {' '.join(sweep.variants)}:\n  {shlex.join(sweep.cmd)}")
        if args.dry_run:
            continue
        since = log.stat().st_size if log.exists() else 0
        code = run_sweep(sweep, log)
        print("\n".join(job_lines(log, since)))
        if code in (130, 143):
            return 130
        status = max(status, int(code != 0))
        print(f"sweep {'failed (exit ' + str(code) + ')' if code else 'finished'}; its output is in {log}")
    if args.dry_run:
        return 0
    found = finished(args.suite, args.out, args.frames)
    if found:
        for path in write_suite(args.suite, found, suite(args.suite)["n_agents"], args.results,
                                f"_f{args.frames}" if args.frames else ""):
            print(f"wrote {path}")
        print(f"table: {write_table(args.results)}")
    else:
        print(f"no finished runs of {args.suite} in {args.out}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
