"""The outputs of the learning benchmarks (``learning_balance.py``, ``learning_envs.py``) from their finished runs,
with the statistics of ``marl_torchrl.report`` (mean and IQM with 95% percentile-bootstrap intervals over seeds,
curves with a 95% bootstrap band). Every run is read up to ``--frames`` (the iteration that reaches it), so a
longer run reports what it had there. Written to ``results``:

- ``<name>_runs.csv``: a row per run: final greedy return (and battle win rate on SMAX), frames, wall time,
  mean collection frames/s, mean gradient updates/s, end-to-end frames/s;
- ``<name>_summary.csv``: per variant the number of runs, the final return's mean [95% CI] and IQM (and the
  win rate's), the throughput figures' means over seeds; then a row per random-policy baseline;
- ``<name>_curves.png`` (``<name>_winrate.png`` on SMAX): greedy evaluation against frames, mean and 95% band
  per variant, the random policy dashed.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from marl_torchrl.plots import read_log
from marl_torchrl.report.collect import Run, load_run
from marl_torchrl.report.curves import group_curves, plot_curves
from marl_torchrl.report.tables import final_table, write_csv

REPS, SEED = 2000, 0  # bootstrap resamples and seed
RETURN, WON = "eval/ep_reward", "eval/battle_won"
THROUGHPUT = ["wall_s", "collection_fps", "updates_per_s", "end_to_end_fps"]


def limit(run_dir: Path, frames: int) -> int:
    """The frames of the iteration that reaches ``frames`` (``frames`` rounded up to a whole batch)."""
    hp = json.loads((Path(run_dir) / "configs" / "hparams.json").read_text())
    batch = int(hp.get("collector", {}).get("frames_per_batch") or 1)
    return -(-frames // batch) * batch


def load(out: Path, variants, seeds, frames: int, metric: str = RETURN) -> list[Run]:
    """The finished runs ``<out>/<variant>_s<seed>`` that reached ``frames``, cut there, labelled by variant."""
    runs = []
    for variant in variants:
        for seed in seeds:
            run = load_run(Path(out) / f"{variant}_s{seed}", metric)
            if not isinstance(run, Run) or run.frames.max() < frames:
                continue
            keep = run.frames <= limit(run.path, frames)
            runs.append(replace(run, algorithm=variant, frames=run.frames[keep], seconds=run.seconds[keep],
                                values=run.values[keep]))
    return runs


def run_row(run: Run, won: dict[str, float]) -> dict:
    """A ``<name>_runs.csv`` row: the final values and the run's throughput up to its last kept frame."""
    log = read_log(Path(run.path) / "training_log.csv")
    upto = log["frames"] <= run.frames[-1]

    def kept(key):
        vals = log[key][upto] if key in log else np.array([])
        return vals[np.isfinite(vals)]

    def mean(key):
        return round(float(kept(key).mean()), 3) if len(kept(key)) else ""

    wall = float(kept("time/elapsed_s")[-1]) if len(kept("time/elapsed_s")) else float("nan")
    row = {"algorithm": run.algorithm, "seed": run.seed, "final_return": run.final, "frames": int(run.frames[-1]),
           "wall_s": round(wall, 1), "collection_fps": mean("time/collection_fps"),
           "updates_per_s": mean("time/updates_per_s"), "end_to_end_fps": round(run.frames[-1] / wall, 1)}
    if run.path in won:
        row["final_battle_won"] = won[run.path]
    return row


def _mean(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) not in ("", None) and r[key] == r[key]]
    return round(float(np.mean(vals)), 3) if vals else ""


def write_results(name: str, runs: list[Run], won_runs: list[Run], randoms: dict[str, float], results: Path,
                  title_metric: str = RETURN) -> list[Path]:
    """Write the three outputs (see the module doc); ``randoms``: baseline label -> its return."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    won = {r.path: r.final for r in won_runs}
    rows = [run_row(r, won) for r in runs]
    fields = ["algorithm", "seed", "final_return", *(["final_battle_won"] if won else []), "frames", *THROUGHPUT]
    paths = [write_csv(rows, fields, results / f"{name}_runs.csv")]
    summary = []
    won_table = {t["algorithm"]: t for t in final_table(won_runs, REPS, SEED)}
    for t in final_table(runs, REPS, SEED):
        mine = [r for r in rows if r["algorithm"] == t["algorithm"]]
        row = {"algorithm": t["algorithm"], "runs": t["n_runs"], "final_return_mean": t["mean"],
               "final_return_ci_low": t["mean_ci_low"], "final_return_ci_high": t["mean_ci_high"],
               "final_return_iqm": t["iqm"], **{f"{k}_mean": _mean(mine, k) for k in THROUGHPUT}}
        w = won_table.get(t["algorithm"])
        if w:
            row.update(final_battle_won_mean=w["mean"], final_battle_won_ci_low=w["mean_ci_low"],
                       final_battle_won_ci_high=w["mean_ci_high"])
        summary.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    summary += [{"algorithm": label.replace(" ", "_"), "runs": "-", "final_return_mean": round(v, 3)}
                for label, v in randoms.items()]
    fields = ["algorithm", "runs", "final_return_mean", "final_return_ci_low", "final_return_ci_high",
              "final_return_iqm", *([f"final_battle_won_{s}" for s in ("mean", "ci_low", "ci_high")] if won else []),
              *[f"{k}_mean" for k in THROUGHPUT]]
    paths.append(write_csv([{f: r.get(f, "") for f in fields} for r in summary], fields,
                           results / f"{name}_summary.csv"))
    paths.append(plot_curves(group_curves(runs, REPS, SEED), "frames", title_metric, results / f"{name}_curves.png",
                             randoms))
    if won_runs:
        paths.append(plot_curves(group_curves(won_runs, REPS, SEED), "frames", WON, results / f"{name}_winrate.png"))
    return paths
