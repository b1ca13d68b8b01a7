"""Reproduce a task's experiment preset: every (variant, seed) a real ``marl-train`` run, resumable; then a
per-task CSV and curve plot, and one markdown table of all tasks beside the published references.

    python benchmarks/reproduce.py --suite lbf_8x8_2p_2f_coop --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce.py --suite balance --algorithms qmix dop_continuous --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce.py --suite smax_3m --seeds 0 1 2 --dry-run    # what would be skipped/resumed/started
    python benchmarks/reproduce.py --suite lbf_8x8_2p_2f_coop --algorithms vdn --seeds 0 --frames 4000 --jobs 1 \\
        --out /tmp/repro_smoke --results /tmp/repro_smoke/results             # a smoke run
    python benchmarks/reproduce.py --table                                    # only rebuild reproduce_table.md

A suite is a task with a preset ``marl_torchrl/configs/experiment/<task>.yaml`` (env, budget, tuned settings);
``SUITES`` gives its default variants and agent count. A variant is an algorithm preset plus overrides (a
suite's ``variants``; any other name is that algorithm preset alone). Run (variant, seed) is
``marl-train experiment=<task> algorithm=<preset> seed=<seed> <overrides> threads=1 logger=[csv]`` in
``<out>/<task>/<variant>_s<seed>`` (``_f<N>`` appended with ``--frames N``, which sets ``total_frames=N``, so
that short runs never count as full ones), ``--jobs`` at a time, its output in ``<run dir>.log``. A run dir
with ``models/final_model.pt`` and a log that reaches the budget is done (skipped); one with a complete
checkpoint is continued (``resume=<dir> hydra.run.dir=<dir>``); anything else starts afresh (a stale dir is
removed). A failed run prints the end of its log, the others go on, and the script exits 1. Ctrl-C sends each
run one SIGINT (it writes a checkpoint and stops) and exits 130: the same command again continues them.

Written to ``--results`` (default benchmarks/results) from every finished run of the suite in ``--out``, earlier
invocations included: ``reproduce_<task>.csv``, ``reproduce_<task>.png`` (``_f<N>`` before the suffix with
``--frames N``, so a short run never replaces the full budget's) and ``reproduce_table.md`` over all CSVs
(see ``reproduce_table.py``, which also holds the published ``REFERENCES``).
"""
from __future__ import annotations

import argparse
import functools
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce_table import write_suite, write_table  # noqa: E402

from marl_torchrl.config import CONFIG_DIR, compose_config  # noqa: E402
from marl_torchrl.faults import newest_checkpoint  # noqa: E402
from marl_torchrl.plots import read_log  # noqa: E402
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
class Job:
    variant: str
    seed: int
    path: Path
    state: str  # "done", "resume" or "fresh"
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


def run_state(path: Path, total_frames: int) -> str:
    """``done`` (final model, log reaches ``total_frames``), ``resume`` (a complete checkpoint) or ``fresh``."""
    path, log = Path(path), Path(path) / "training_log.csv"
    if (path / "models" / "final_model.pt").is_file() and log.is_file():
        frames = [f for f in read_log(log).get("frames", []) if f == f]
        if max(frames, default=-1) >= total_frames:
            return "done"
    return "resume" if newest_checkpoint(path) else "fresh"


def command(task: str, variant: str, seed: int, path: Path, frames: int | None = None, resume: bool = False) -> list:
    preset, extra = variant_spec(task, variant)
    cmd = [sys.executable, "-m", "marl_torchrl.train", f"experiment={task}", f"algorithm={preset}", f"seed={seed}",
           *extra, "threads=1", "logger=[csv]"]
    cmd += [f"total_frames={frames}"] * bool(frames) + [f"resume={path}"] * resume
    return cmd + [f"hydra.run.dir={path}"]


def plan(task: str, variants, seeds, out: Path, frames: int | None = None) -> list[Job]:
    jobs = []
    for v in variants:
        for s in seeds:
            path = run_dir(out, task, v, s, frames)
            state = run_state(path, budget(task, v, frames))
            jobs.append(Job(v, s, path, state, command(task, v, s, path, frames, state == "resume")))
    return jobs


def finished(task: str, out: Path, frames: int | None = None) -> list[tuple[str, int, Path]]:
    """``(variant, seed, dir)`` of every done run of ``task`` in ``out`` with this ``--frames`` (None: full)."""
    found = []
    for path in sorted((Path(out) / task).glob("*_s*")):
        m = RUN_NAME.fullmatch(path.name)
        if not (path.is_dir() and m and m["frames"] == (str(frames) if frames else None)):
            continue
        try:
            if run_state(path, budget(task, m["variant"], frames)) == "done":
                found.append((m["variant"], int(m["seed"]), path))
        except ConfigError as err:
            print(f"skipped {path}: {err}", file=sys.stderr)
    return found


def launch(job: Job) -> subprocess.Popen:
    if job.state == "fresh" and job.path.exists():
        shutil.rmtree(job.path)  # no complete checkpoint: nothing to keep
    job.path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{job.path}.log", "a" if job.state == "resume" else "w") as log:
        # its own session: a Ctrl-C at the terminal reaches only this script, which sends each run one SIGINT
        return subprocess.Popen(job.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last non-blank lines of a run's log (progress bars' carriage returns count as line ends)."""
    text = Path(f"{path}.log").read_text(errors="replace").replace("\r", "\n")
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def run_all(todo: list[Job], jobs: int) -> list[Job]:
    """Run ``todo``, ``jobs`` at a time; returns the failed ones. Ctrl-C: SIGINT each run, wait, exit 130."""
    running: dict[subprocess.Popen, Job] = {}
    failed, t0 = [], time.time()
    try:
        while todo or running:
            while todo and len(running) < jobs:
                job = todo.pop(0)
                running[launch(job)] = job
                print(f"{'resumed' if job.state == 'resume' else 'started'}: {job.path}")
            time.sleep(1)
            for proc in [p for p in running if p.poll() is not None]:
                job = running.pop(proc)
                if proc.returncode:
                    failed.append(job)
                    print(f"failed (exit {proc.returncode}): {job.path}; end of {job.path}.log:\n"
                          f"{log_tail(job.path)}", file=sys.stderr)
                else:
                    print(f"finished: {job.path} ({(time.time() - t0) / 60:.1f} min since start)")
    except KeyboardInterrupt:
        print(f"interrupted: asking {len(running)} run(s) to checkpoint and stop; "
              "the same command again continues them", file=sys.stderr)
        for proc in running:
            proc.send_signal(signal.SIGINT)
        try:
            for proc in running:
                proc.wait()
        except KeyboardInterrupt:
            for proc in running:
                proc.kill()
        raise SystemExit(130)
    return failed


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", help=f"a task with a preset in {CONFIG_DIR / 'experiment'}")
    p.add_argument("--algorithms", nargs="+", help="variants (default: the suite's)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
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
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored there)
        signal.signal(sig, _interrupt)
    if args.table:
        print(f"table: {write_table(args.results)}")
        return 0
    if not args.suite:
        return error("name --suite <task> (or --table)")
    if args.suite not in presets():
        why = "its preset is not written yet" if args.suite in SUITES else "unknown task"
        return error(f"--suite {args.suite}: {why}, no configs/experiment/{args.suite}.yaml "
                     f"(presets: {' '.join(presets())})")
    variants = args.algorithms or suite(args.suite)["algorithms"]
    try:
        jobs = plan(args.suite, variants, args.seeds, args.out, args.frames)
    except ConfigError as err:
        return error(str(err))
    for job in jobs:
        what = {"done": "done, skipped", "resume": f"resume from {newest_checkpoint(job.path)}",
                "fresh": "start"}[job.state]
        print(f"{job.variant} s{job.seed}: {what}" + ("" if job.state == "done" else f"\n  {shlex.join(job.cmd)}"))
    if args.dry_run:
        return 0
    failed = run_all([j for j in jobs if j.state != "done"], args.jobs)
    found = finished(args.suite, args.out, args.frames)
    if found:
        for path in write_suite(args.suite, found, suite(args.suite)["n_agents"], args.results,
                                f"_f{args.frames}" if args.frames else ""):
            print(f"wrote {path}")
        print(f"table: {write_table(args.results)}")
    else:
        print(f"no finished runs of {args.suite} in {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
