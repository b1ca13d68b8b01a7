"""Reproduce a task's experiment preset: every (variant, seed) a ``marl-train`` job of a Hydra multirun, resumable;
then a per-task CSV and curve plot, and one markdown table of all tasks beside the published references.

    python benchmarks/reproduce.py --suite lbf_8x8_2p_2f_coop --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce.py --suite balance --algorithms qmix dop_continuous --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce.py --suite smax_3m --seeds 0 1 2 --dry-run    # what would be skipped/resumed/started
    python benchmarks/reproduce.py --suite lbf_8x8_2p_2f_coop --algorithms vdn --seeds 0 --frames 4000 --jobs 1 \\
        --out /tmp/repro_smoke --results /tmp/repro_smoke/results             # a smoke run
    python benchmarks/reproduce.py --suite simple_spread --seeds 0 1 2 --num-seeds 3 --jobs 2  # 3 seeds per process
    python benchmarks/reproduce.py --table                                    # only rebuild reproduce_table.md

A suite is a task with a preset ``marl_torchrl/configs/experiment/<task>.yaml`` (env, budget, tuned settings);
``SUITES`` gives its default variants and agent count. A variant is an algorithm preset plus overrides (a
suite's ``variants``; any other name is that algorithm preset alone). The variants that share their overrides
run as one sweep (:func:`sweeps`, ``multirun.py``)::

    marl-train -m experiment=<task> threads=1 logger=[csv] algorithm=<presets> seed=<seeds> <overrides> resume=auto
        hydra.sweep.dir=<out>/<task> hydra.sweep.subdir=<variant>_s<seed> hydra/launcher=joblib hydra.launcher.n_jobs=<jobs>

(``--jobs 1``: Hydra's basic launcher; ``--frames N`` adds ``total_frames=N`` and ``_f<N>`` to the job dirs, so that
short runs never count as full ones). ``--num-seeds K`` trains each K consecutive seeds in one process
(``seed=<first> num_seeds=K``, the stacked learners of ``marl_torchrl.seeds``): the job dir is
``<variant>_s<first>_k<K>`` and seed s's run dir ``<job dir>/seed_<s>``, an ordinary run's files. Where a seed
has both an ordinary and a stacked run dir, the ordinary one counts. ``resume=auto`` makes each job skip a finished run dir (final model at the
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
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))

from multirun import group_variants, launch, sweep_command  # noqa: E402
from reproduce_table import write_suite, write_table  # noqa: E402

from marl_torchrl.checkpoint import run_status  # noqa: E402
from marl_torchrl.config import CONFIG_DIR, compose_config  # noqa: E402
from marl_torchrl.registry import ConfigError  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "benchmarks" / "runs" / "reproduce"
CONTINUOUS = ["env.continuous_actions=true"]
SUITES = {  # per task: default variants, n_agents (for return_per_agent), variants that are not a bare preset
    "lbf_8x8_2p_2f_coop": {"algorithms": ["qmix", "vdn"], "n_agents": 2},
    "smax_3m": {"algorithms": ["qmix", "pqn_vdn"], "n_agents": 3,  # pqn_vdn_ref512: about 3.5 h a seed on one core
                "variants": {"pqn_vdn_ref512": ("pqn_vdn", ["model.hidden_dim=512", "model.input_layers=2",
                                                            "algorithm.optimizer=radam"])}},
    "simple_spread": {"algorithms": ["qmix", "vdn"], "n_agents": 3},
    "balance": {"algorithms": ["qmix", "vdn", "iql", "pqn_vdn", "pqn_qmix", "facmac_continuous", "dop", "dop_continuous"],
                "n_agents": 4,
                "variants": {"facmac_continuous": ("facmac", CONTINUOUS), "dop_continuous": ("dop", CONTINUOUS)}},
    "gridworld25": {"algorithms": ["qmix"], "n_agents": 4},
}
RUN_NAME = re.compile(r"(?P<variant>.+)_s(?P<seed>\d+)(?:_k(?P<k>\d+))?(?:_f(?P<frames>\d+))?")


def suite(task: str) -> dict:
    return SUITES.get(task, {"algorithms": ["qmix", "vdn"], "n_agents": None})


def variant_spec(task: str, variant: str) -> tuple[str, list[str]]:
    """``(algorithm preset, extra overrides)`` of a variant."""
    return suite(task).get("variants", {}).get(variant, (variant, []))


def presets() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def run_dir(out: Path, task: str, variant: str, seed: int, frames: int | None = None, first: int | None = None,
            k: int = 1) -> Path:
    """Seed ``seed``'s run dir; with ``k > 1`` inside the dir of the K-run that starts at seed ``first``."""
    f = f"_f{frames}" if frames else ""
    if k > 1:
        return Path(out) / task / f"{variant}_s{first}_k{k}{f}" / f"seed_{seed}"
    return Path(out) / task / f"{variant}_s{seed}{f}"


def chunks(seeds, k: int) -> list[list[int]]:
    """``seeds`` cut into K-runs of ``k`` consecutive seeds (``num_seeds=k`` trains seed, ..., seed + k - 1).

    >>> chunks([0, 1, 2, 3], 2)
    [[0, 1], [2, 3]]
    >>> chunks([0, 2], 2)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: --num-seeds 2 needs runs of 2 consecutive seeds, got --seeds 0 2
    """
    seeds = sorted(seeds)
    out = [seeds[i:i + k] for i in range(0, len(seeds), k)]
    if k < 1 or any(c != list(range(c[0], c[0] + k)) for c in out):
        raise ConfigError(f"--num-seeds {k} needs runs of {k} consecutive seeds, got --seeds {' '.join(map(str, seeds))}")
    return out


@functools.lru_cache(maxsize=None)
def budget(task: str, variant: str, frames: int | None = None) -> int:
    """``total_frames`` of a run: ``frames`` or the preset's (raises ConfigError for a bad variant)."""
    preset, extra = variant_spec(task, variant)
    cfg = compose_config(f"experiment={task}", f"algorithm={preset}", *extra,
                         *([f"total_frames={frames}"] if frames else []))
    return int(cfg.total_frames)


def plan(task: str, variants, seeds, out: Path, frames: int | None = None, k: int = 1) -> list[tuple[str, int, Path, str]]:
    """``(variant, seed, run dir, state)`` per seed; state as ``resume=auto`` will find it (``run_status``)."""
    return [(v, s, p, run_status(p, budget(task, v, frames))[0])
            for v in variants for c in chunks(seeds, k) for s in c
            for p in [run_dir(out, task, v, s, frames, c[0], k)]]


def sweeps(task: str, variants, seeds, out: Path, frames: int | None = None, jobs: int = 1, k: int = 1) -> list:
    """``(group, marl-train -m command)`` per sweep: the variants that share their overrides, e.g. on balance
    ``algorithm=qmix,dop`` and ``algorithm=facmac,dop env.continuous_actions=true`` (``<preset>_continuous``);
    with ``k > 1`` one job per K-run (``seed=<first seeds> num_seeds=k``)."""
    common = [f"experiment={task}", "threads=1", "logger=[csv]", *([f"total_frames={frames}"] if frames else []),
              *([f"num_seeds={k}"] if k > 1 else [])]
    groups = group_variants({v: variant_spec(task, v) for v in variants})
    firsts = [c[0] for c in chunks(seeds, k)]
    tag = (f"_k{k}" if k > 1 else "") + (f"_f{frames}" if frames else "")
    return [(g, sweep_command(g, firsts, Path(out) / task, jobs, common, tag)) for g in groups]


def finished(task: str, out: Path, frames: int | None = None) -> list[tuple[str, int, Path]]:
    """``(variant, seed, dir)`` of every done run of ``task`` in ``out`` with this ``--frames`` (None: full)."""
    found, seen = [], set()
    named = [(m, p) for p in (Path(out) / task).glob("*_s*") for m in [RUN_NAME.fullmatch(p.name)] if m]
    for m, path in sorted(named, key=lambda mp: (mp[0]["k"] is not None, mp[1])):  # ordinary runs first
        if not (path.is_dir() and m["frames"] == (str(frames) if frames else None)):
            continue
        first, k = int(m["seed"]), int(m["k"] or 1)
        dirs = [(first, path)] if k == 1 else [(s, path / f"seed_{s}") for s in range(first, first + k)]
        for seed, d in dirs:
            try:
                if (m["variant"], seed) not in seen and run_status(d, budget(task, m["variant"], frames))[0] == "done":
                    found.append((m["variant"], seed, d))
                    seen.add((m["variant"], seed))
            except ConfigError as err:
                print(f"skipped {d}: {err}", file=sys.stderr)
    return sorted(found, key=lambda x: (x[0], x[1]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", help=f"a task with a preset in {CONFIG_DIR / 'experiment'}")
    p.add_argument("--algorithms", nargs="+", help="variants (default: the suite's)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time (joblib launcher; 1: Hydra's basic launcher)")
    p.add_argument("--frames", type=int, help="total_frames for a shorter run (default: the preset's budget)")
    p.add_argument("--num-seeds", type=int, default=1, help="train each K consecutive seeds in one process "
                   "(num_seeds=K; algorithms it supports only)")
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
        jobs = plan(args.suite, variants, args.seeds, args.out, args.frames, args.num_seeds)
    except ConfigError as err:
        return error(str(err))
    for variant, seed, path, state in jobs:
        print(f"{variant} s{seed}: " + {"done": "done, skipped", "resume": f"resume {path}", "fresh": "start"}[state])
    todo = [(g, cmd) for g, cmd in sweeps(args.suite, variants, args.seeds, args.out, args.frames, args.jobs,
                                          args.num_seeds)
            if any(state != "done" for v, _, _, state in jobs if v in g.variants)]  # all finished: not started
    if args.dry_run:
        for g, cmd in todo:
            print(f"sweep of {' '.join(g.variants)}:\n  {shlex.join(cmd)}")
        return 0
    status = launch(todo, args.out / args.suite / "sweep.log")
    if status == 130:
        return 130
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
