"""``marl-report`` / ``python -m marl_torchrl.report``: aggregate many runs (no torch import).

    marl-report runs/sweep1 runs/sweep2 --out report --metric eval/ep_reward --reps 2000 --seed 0

Writes to ``--out``: ``curves.csv``, ``curves_frames.png``, ``curves_seconds.png``, ``final.csv``,
``prob_improvement.csv`` and ``report.md`` (tables, skipped runs, definitions). A path that does not
exist or holds no runs is one ``error:`` line, exit 2.

>>> import tempfile, pathlib, contextlib, io
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> from marl_torchrl.report.collect import write_fake_run
>>> write_fake_run(d / "runs" / "a", "vdn", "matrix", "two_step", 0, [(32, 1.0), (64, 2.0)])
>>> with contextlib.redirect_stdout(io.StringIO()):
...     rc = main([str(d / "runs"), "--out", str(d / "rep"), "--reps", "50"])
>>> rc
0
>>> sorted(p.name for p in (d / "rep").iterdir())
['curves.csv', 'curves_frames.png', 'curves_seconds.png', 'final.csv', 'prob_improvement.csv', 'report.md']
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from marl_torchrl.report.collect import ReportError, collect_runs
from marl_torchrl.report.curves import group_curves, plot_curves, write_curves_csv
from marl_torchrl.report.tables import (FINAL_FIELDS, POI_FIELDS, final_table, markdown_table, poi_table,
                                        write_csv)

__all__ = ["main", "build_parser"]

DEFINITIONS = """\
## Definitions

- Final performance of a run: the last non-empty value of the metric in its `training_log.csv`.
- IQM: rliable's, `scipy.stats.trim_mean(x, 0.25)`: sort the n scores, drop floor(n/4) from each end,
  average the rest (with 3 runs, the mean).
- Intervals: 95% percentile bootstrap, {reps} resamples, seed {seed}; runs resampled with replacement
  within each task (stratified bootstrap). `all (k tasks)` rows pool raw scores over the tasks.
- P(X > Y): mean over the shared tasks of U / (n m), U the Mann-Whitney count of run pairs with x > y,
  ties counting 1/2; its interval resamples both algorithms' runs within each task.
- Curves: each run interpolated linearly onto a common grid only within its own range; the mean over the
  runs present at each point with a bootstrap interval over runs.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``marl-report`` argument parser.

    >>> build_parser().parse_args(["runs"]).metric
    'eval/ep_reward'
    """
    p = argparse.ArgumentParser(prog="marl-report", description="Aggregate marl-train runs: curves with "
                                "95% bootstrap intervals, final mean/IQM table, probability of improvement.")
    p.add_argument("paths", nargs="+", help="run dirs or sweep dirs (searched at any depth)")
    p.add_argument("--out", default="report", help="output dir (default ./report)")
    p.add_argument("--metric", default="eval/ep_reward", help="training_log.csv column (default eval/ep_reward)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    return p


def _markdown(args, runs, skipped, final_rows, poi_rows) -> str:
    parts = [f"# Report: {args.metric}", "",
             f"{len(runs)} runs in {len({(r.algorithm, r.task) for r in runs})} (algorithm, task) groups; "
             f"{len(skipped)} skipped.", "",
             "![frames](curves_frames.png)", "", "![seconds](curves_seconds.png)", "",
             "## Final performance", "", markdown_table(final_rows, FINAL_FIELDS), "",
             "## Probability of improvement", ""]
    parts.append(markdown_table(poi_rows, POI_FIELDS) if poi_rows else "No two algorithms share a task.")
    parts += ["", "## Skipped runs", ""]
    parts += [f"- skipped: {d}: {why}" for d, why in skipped] or ["None."]
    parts += ["", DEFINITIONS.format(reps=args.reps, seed=args.seed)]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``marl-report``; returns 0, or exits 2 on a bad path / no usable runs (see the module example)."""
    args = build_parser().parse_args(argv)
    if args.reps < 1:
        print("error: --reps must be at least 1", file=sys.stderr)
        raise SystemExit(2)
    try:
        runs, skipped = collect_runs(args.paths, args.metric)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    for d, why in skipped:
        print(f"skipped: {d}: {why}")
    if not runs:
        print(f"error: no usable runs under {' '.join(args.paths)} ({len(skipped)} skipped)", file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves = group_curves(runs, args.reps, args.seed)
    write_curves_csv(curves, out / "curves.csv")
    for axis in ("frames", "seconds"):
        plot_curves(curves, axis, args.metric, out / f"curves_{axis}.png")
    final_rows = final_table(runs, args.reps, args.seed)
    poi_rows = poi_table(runs, args.reps, args.seed)
    write_csv(final_rows, FINAL_FIELDS, out / "final.csv")
    write_csv(poi_rows, POI_FIELDS, out / "prob_improvement.csv")
    (out / "report.md").write_text(_markdown(args, runs, skipped, final_rows, poi_rows))
    print(f"report: {len(runs)} runs, {len(skipped)} skipped -> {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
