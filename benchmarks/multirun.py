"""How the benchmark scripts launch their runs: Hydra multiruns of ``marl-train`` with ``resume=auto``.

A variant is an algorithm preset plus overrides. The variants that share their overrides (apart from the
algorithm) run as one sweep, ``algorithm=<presets> seed=<seeds>``, with job dirs ``<sweep dir>/<variant>_s<seed>``
(``hydra.sweep.subdir``), so the same command again finds them: finished jobs are skipped, interrupted ones
continue from their newest checkpoint (``resume=auto``). ``--jobs`` above 1 runs the jobs through
``hydra/launcher=joblib``. :func:`run_sweep` starts one sweep in its own session, its output in a log, and
turns Ctrl-C or SIGTERM into one SIGINT to the sweep's process group, as a terminal would: the running jobs
checkpoint and the others do not start (``marl_torchrl.sweep_stop``).

>>> [(g.variants, g.algorithms, g.extra, g.subdir) for g in group_variants(
...     {"qmix": ("qmix", []), "vdn": ("vdn", []), "facmac_c": ("facmac", ["env.continuous_actions=true"])})]
[(['qmix', 'vdn'], 'qmix,vdn', [], '${algorithm.name}'), (['facmac_c'], 'facmac', ['env.continuous_actions=true'], '${algorithm.name}_c')]
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Group:
    """Variants that run as one sweep: their presets, their shared overrides, the job dir name before ``_s<seed>``."""

    variants: list
    algorithms: str
    extra: list
    subdir: str


def group_variants(specs: dict[str, tuple[str, list[str]]]) -> list[Group]:
    """Group ``{variant: (algorithm preset, extra overrides)}`` into sweeps (see the module example). A variant
    named ``<preset><suffix>`` gets the job dirs ``<preset><suffix>_s<seed>``; any other name is its own sweep."""
    groups: dict[tuple, Group] = {}
    for variant, (preset, extra) in specs.items():
        subdir = "${algorithm.name}" + variant[len(preset):] if variant.startswith(preset) else variant
        group = groups.setdefault((tuple(extra), subdir), Group([], "", list(extra), subdir))
        group.variants.append(variant)
        group.algorithms = ",".join(dict.fromkeys([*filter(None, group.algorithms.split(",")), preset]))
    return list(groups.values())


def sweep_command(group: Group, seeds, sweep_dir: Path, jobs: int, common=(), tag: str = "") -> list[str]:
    """``marl-train -m`` for ``group``: ``common`` overrides first (a variant's own win), ``tag`` after the seed."""
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []
    return [sys.executable, "-m", "marl_torchrl.train", "-m", *common, f"algorithm={group.algorithms}",
            f"seed={','.join(str(s) for s in seeds)}", *group.extra, "resume=auto", f"hydra.sweep.dir={sweep_dir}",
            f"hydra.sweep.subdir={group.subdir}_s${{seed}}{tag}", *launcher]


def run_sweep(cmd: list[str], log: Path) -> int:
    """Run one sweep in its own session, its output appended to ``log``; returns its exit status. Ctrl-C or
    SIGTERM here sends the sweep one SIGINT (its running jobs checkpoint), a second one another (at once)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        print(f"$ {shlex.join(cmd)}", file=f, flush=True)
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

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


def launch(groups_cmds: list[tuple[Group, list[str]]], log: Path) -> int:
    """Run each sweep in turn, printing its jobs' lines; returns 0, 1 (a job failed) or 130 (interrupted)."""
    status = 0
    for group, cmd in groups_cmds:
        print(f"sweep of {' '.join(group.variants)}:\n  {shlex.join(cmd)}", flush=True)
        since = log.stat().st_size if log.exists() else 0
        code = run_sweep(cmd, log)
        print("\n".join(job_lines(log, since)))
        if code in (130, 143):
            return 130
        status = max(status, int(code != 0))
        print(f"sweep {'failed (exit ' + str(code) + ')' if code else 'finished'}; its output is in {log}")
    return status
