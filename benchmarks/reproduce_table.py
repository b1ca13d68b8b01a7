"""The outputs of ``benchmarks/reproduce.py``: a task's CSV and curve plot from its finished runs, and one markdown
table over all tasks beside the published references (``REFERENCES``). Statistics come from
``marl_torchrl.report`` (``final_table``: mean and IQM with 95% percentile-bootstrap intervals over seeds).

- ``reproduce_<task>.csv`` (``reproduce_<task>_f<N>.csv`` for runs of ``--frames N``): a row per variant
  (``CSV_FIELDS``). A run's final greedy return is the last ``eval/ep_reward`` of its log (the final
  evaluation, ``eval.final_episodes`` episodes where the preset sets it, their number in
  ``final_eval_episodes``); ``return_per_agent`` divides the mean by the number of agents (EPyMARL's MPE
  scale); ``wall_min_mean`` is the last ``time/elapsed_s`` in minutes; where the env family logs its own
  episode metric (``eval/<name>``: SMAX's ``battle_won``, GridWorld's ``items_collected``), its name in
  ``episode_metric`` and its final value's mean and interval over seeds in ``episode_metric_*``.
- ``reproduce_<task>_curves.csv``: every run's greedy evaluations (variant, seed, frames, value), from which
  the plot is drawn; variants with no finished run in this invocation keep their rows here and in the CSV.
- ``reproduce_<task>.png`` (and ``reproduce_<task>_<name>.png`` for the episode metric): greedy eval return
  against frames, mean and 95% band over seeds per variant.
- ``reproduce_table.md``: every ``reproduce_*.csv`` in the results dir, a row per (task, variant).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from marl_torchrl.plots import last_value, read_log
from marl_torchrl.report.collect import Run, load_run
from marl_torchrl.report.curves import group_curves, plot_curves
from marl_torchrl.report.tables import final_table, markdown_table, write_csv

REPS, SEED = 2000, 0  # bootstrap resamples and seed
CSV_FIELDS = ["task", "variant", "algorithm", "n_seeds", "seeds", "return_mean", "return_ci_low", "return_ci_high",
              "return_iqm", "return_per_seed", "n_agents", "return_per_agent", "total_frames", "wall_min_mean",
              "final_eval_episodes", "episode_metric", "episode_metric_mean", "episode_metric_ci_low",
              "episode_metric_ci_high"]
#: Columns every evaluation logs; any other ``eval/<name>`` is the env family's own episode metric.
EVAL_STANDARD = {"eval/ep_reward", "eval/std_ep_reward", "eval/ep_length", "eval/episodes"}
#: How the table names an episode metric (default: the name with spaces).
METRIC_LABELS = {"battle_won": "win rate", "items_collected": "items collected"}
TABLE_FIELDS = ["task", "variant", "ours: final greedy return, mean [95% CI]", "per agent", "budget (frames)",
                "wall min (this CPU)", "published", "published budget", "published metric", "source"]

_PQN = ("purejaxql README figure docs/smax_iqm.png (Gallici et al., ICLR 2025; mttga/purejaxql), read off the plot")
_SMAX = "win-rate IQM over several SMAX maps (not 3m alone); compare our win rate"
_BENCHMARL = "BenchMARL README plot (Bettini et al. 2024; fine_tuned/vmas config), read off the plot"
_VMAS = "IQM of normalised return aggregated over VMAS navigation, sampling and balance (not balance alone, not raw)"
_EPYMARL = "Papoudakis et al. 2021 (EPyMARL; uoe-agents/epymarl)"
_LBF = {"number": None, "budget": "2.05M env steps (t_max 2050000)", "source": _EPYMARL,
        "metric": "maximum and average team return (at most 1), 100 greedy episodes every 50k steps; "
                  "the per-task number is not in our references"}
_MPE = {"number": None, "budget": "not in our references", "source": _EPYMARL + "; epymarl#29",
        "metric": "MPE returns divided by the number of agents (compare 'per agent'); "
                  "the number is not in our references"}
REFERENCES = {  # (task, variant) -> published number/budget/metric/source; only numbers in the project's references
    ("smax_3m", "pqn_vdn"): {"number": "~0.95", "budget": "1e7 env steps", "metric": _SMAX, "source": _PQN},
    ("smax_3m", "pqn_vdn_ref512"): {"number": "~0.95", "budget": "1e7 env steps", "metric": _SMAX, "source": _PQN},
    ("smax_3m", "qmix"): {"number": "~0.66", "budget": "1e7 env steps", "metric": _SMAX, "source": _PQN},
    ("smax_3m", "vdn"): {"number": "~0.63", "budget": "1e7 env steps", "metric": _SMAX, "source": _PQN},
    ("balance", "qmix"): {"number": "~0.87", "budget": "10M frames", "metric": _VMAS, "source": _BENCHMARL},
    ("balance", "vdn"): {"number": "~0.85", "budget": "10M frames", "metric": _VMAS, "source": _BENCHMARL},
    ("balance", "iql"): {"number": "~0.86", "budget": "10M frames", "metric": _VMAS, "source": _BENCHMARL},
    ("lbf_8x8_2p_2f_coop", "qmix"): _LBF, ("lbf_8x8_2p_2f_coop", "vdn"): _LBF, ("lbf_8x8_2p_2f_coop", "iql"): _LBF,
    ("simple_spread", "qmix"): _MPE, ("simple_spread", "vdn"): _MPE,
}


def _runs(found, metric: str) -> list[Run]:
    """The finished runs' ``metric``, each labelled with its variant (``final_table`` groups by it)."""
    runs = []
    for variant, _, path in found:
        run = load_run(path, metric)
        if isinstance(run, Run):
            run.algorithm = variant
            runs.append(run)
    return runs


def _n_agents(hp: dict, default: int | None) -> int | None:
    env = hp.get("env", {})
    return env.get("n_agents") or (env.get("scenario_kwargs") or {}).get("n_agents") or default


def _last(log: dict, key: str) -> float | None:
    value = last_value(log, key)
    return None if math.isnan(value) else value


def _joined(values) -> str:
    """The distinct values, whole numbers as ints, semicolon-joined ("" for none)."""
    return ";".join(str(int(v)) for v in sorted({v for v in values if v is not None}))


def episode_metric(found) -> str | None:
    """The env family's own episode metric that the runs of ``found`` log (``eval/<name>`` beyond
    ``EVAL_STANDARD``; the first by name if there are several), or None."""
    names = set()
    for _, _, path in found:
        log = Path(path) / "training_log.csv"
        if log.is_file():
            with open(log, newline="") as f:
                header = next(csv.reader(f), [])
            names |= {c for c in header if c.startswith("eval/") and c not in EVAL_STANDARD}
    return min(names) if names else None


def suite_rows(task: str, found, n_agents: int | None) -> list[dict]:
    """A ``CSV_FIELDS`` row per variant from ``found`` = ``[(variant, seed, run dir)]`` of finished runs."""
    returns = sorted(_runs(found, "eval/ep_reward"), key=lambda r: (r.algorithm, r.seed))
    metric = episode_metric(found)
    extra = {row["algorithm"]: row for row in final_table(_runs(found, metric), REPS, SEED)} if metric else {}
    rows = []
    for t in final_table(returns, REPS, SEED):
        members = [r for r in returns if r.algorithm == t["algorithm"]]
        hps = [json.loads((Path(r.path) / "configs" / "hparams.json").read_text()) for r in members]
        logs = [read_log(Path(r.path) / "training_log.csv") for r in members]
        n = _n_agents(hps[0], n_agents)
        walls = [w for w in (_last(log, "time/elapsed_s") for log in logs) if w is not None]
        row = {"task": task, "variant": t["algorithm"], "algorithm": hps[0]["algorithm"]["name"],
               "n_seeds": t["n_runs"], "seeds": ";".join(str(r.seed) for r in members),
               "return_mean": t["mean"], "return_ci_low": t["mean_ci_low"], "return_ci_high": t["mean_ci_high"],
               "return_iqm": t["iqm"], "return_per_seed": ";".join(f"{r.final:.4g}" for r in members),
               "n_agents": n or "", "return_per_agent": t["mean"] / n if n else "",
               "total_frames": _joined(int(hp["total_frames"]) for hp in hps),
               "wall_min_mean": sum(walls) / len(walls) / 60 if walls else "",
               "final_eval_episodes": _joined(_last(log, "eval/episodes") for log in logs)}
        if t["algorithm"] in extra:
            w = extra[t["algorithm"]]
            row.update(episode_metric=metric.removeprefix("eval/"), episode_metric_mean=w["mean"],
                       episode_metric_ci_low=w["mean_ci_low"], episode_metric_ci_high=w["mean_ci_high"])
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    return rows


def write_suite(task: str, found, n_agents: int | None, results: Path, tag: str = "") -> list[Path]:
    """Write ``reproduce_<task><tag>.csv``, its curves (``_curves.csv``) and plot(s) into ``results``; returns
    the paths written. ``tag`` (``_f<N>`` for ``--frames N``) keeps short runs' files apart from the full
    budget's. A variant with no finished run in ``found`` keeps its row and curves from the files already
    there (run dirs are not committed, so a checkout can add one variant without rerunning the others)."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    csv_path, curves_path = results / f"reproduce_{task}{tag}.csv", results / f"reproduce_{task}{tag}_curves.csv"
    new = {v for v, _, _ in found}
    rows = suite_rows(task, found, n_agents) + [r for r in _read_csv(csv_path) if r["variant"] not in new]
    metric = episode_metric(found) or next(("eval/" + r["episode_metric"] for r in rows if r.get("episode_metric")), None)
    metrics = ["eval/ep_reward"] + ([metric] if metric else [])
    curves = [c for m in metrics for c in _curve_rows(_runs(found, m), m)]
    curves += [c for c in _read_csv(curves_path) if c["variant"] not in new]
    curves.sort(key=lambda c: (c["variant"], int(c["seed"]), c["metric"], int(c["frames"])))
    paths = [write_csv(sorted(rows, key=lambda r: r["variant"]), CSV_FIELDS, csv_path),
             write_csv(curves, CURVE_CSV_FIELDS, curves_path)]
    for m in metrics:
        runs = _curve_runs(curves, m)
        if runs:
            suffix = "" if m == "eval/ep_reward" else "_" + m[5:]
            paths.append(plot_curves(group_curves(runs, REPS, SEED), "frames", m, results / f"reproduce_{task}{tag}{suffix}.png"))
    return paths


CURVE_CSV_FIELDS = ["variant", "seed", "task", "metric", "frames", "seconds", "value"]


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _curve_rows(runs: list[Run], metric: str) -> list[dict]:
    return [{"variant": r.algorithm, "seed": r.seed, "task": r.task, "metric": metric, "frames": int(f),
             "seconds": round(float(t), 2), "value": round(float(v), 5)}
            for r in runs for f, t, v in zip(r.frames, r.seconds, r.values)]


def _curve_runs(curves: list[dict], metric: str) -> list[Run]:
    """The curve rows of ``metric`` as one :class:`Run` per (variant, seed), for ``group_curves``."""
    by_run: dict[tuple[str, str], list[dict]] = {}
    for c in curves:
        if c["metric"] == metric:
            by_run.setdefault((c["variant"], str(c["seed"])), []).append(c)
    return [Run("", variant, rows[0]["task"], int(seed), *(np.array([float(c[k]) for c in rows])
                                                           for k in ("frames", "seconds", "value")))
            for (variant, seed), rows in sorted(by_run.items())]


def _ci(row: dict, key: str) -> str:
    return f"{float(row[key + '_mean']):.3g} [{float(row[key + '_ci_low']):.3g}, {float(row[key + '_ci_high']):.3g}]"


def table_row(row: dict) -> dict:
    """A ``TABLE_FIELDS`` row from a ``reproduce_<task>.csv`` row and ``REFERENCES``."""
    ours = f"{_ci(row, 'return')}, n={row['n_seeds']} seeds"
    if row.get("episode_metric_mean"):
        name = row["episode_metric"]
        ours += f"; {METRIC_LABELS.get(name, name.replace('_', ' '))} {_ci(row, 'episode_metric')}"
    ref = REFERENCES.get((row["task"], row["variant"]))
    per_agent = f"{float(row['return_per_agent']):.3g}" if row.get("return_per_agent") else "-"
    wall = f"{float(row['wall_min_mean']):.3g}" if row.get("wall_min_mean") else "-"
    published = {"published": "none published", "published budget": "-", "published metric": "-", "source": "-"}
    if ref:
        published = {"published": ref["number"] or "none published", "published budget": ref["budget"],
                     "published metric": ref["metric"], "source": ref["source"]}
    return {"task": row["task"], "variant": row["variant"], TABLE_FIELDS[2]: ours, "per agent": per_agent,
            "budget (frames)": row["total_frames"], "wall min (this CPU)": wall, **published}


def replayed(results: Path) -> list[str]:
    """Lines for the final models replayed over many more episodes (``final_eval.py``'s ``final_eval_<task>_summary.csv``
    files; only final models, not earlier checkpoints), or none."""
    lines = []
    for path in sorted(results.glob("final_eval_*_summary.csv")):
        task = path.name[len("final_eval_"):-len("_summary.csv")]
        for r in _read_csv(path):
            if "@" not in r["variant"]:
                n = int(r["n_seeds"])
                per_run = int(r["episodes"]) // max(n, 1)
                spread = (f" [{float(r['ci_low']):.3g}, {float(r['ci_high']):.3g}], n={n} seeds "
                          f"({r['per_seed'].replace(';', ', ')})" if n > 1 else ", 1 seed (no interval over seeds)")
                lines.append(f"- {task} {r['variant']}: {r['metric'].replace('_', ' ')} {float(r['mean']):.3g}"
                             f"{spread}, {per_run} greedy episodes a run")
    if not lines:
        return []
    return ["## The final models replayed over more episodes (`benchmarks/final_eval.py`)", "",
            "A run's own final evaluation above plays its preset's `eval.final_episodes`; these replay the same final "
            "models over many more greedy episodes on one env seed shared by all runs (the bracket: 95% "
            "bootstrap interval over seeds). Runs measured here may be earlier ones than the table's rows.", "",
            *lines, ""]


def write_table(results: Path) -> Path:
    """``reproduce_table.md`` over every ``reproduce_*.csv`` in ``results`` (not the ``_curves.csv``)."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(p for p in results.glob("reproduce_*.csv") if not p.name.endswith("_curves.csv")):
        rows += [table_row(r) for r in _read_csv(path)]
    text = ["# Reproductions: our final greedy return beside the published numbers", "",
            "Ours: mean over seeds of each run's final greedy evaluation return, 95% percentile-bootstrap interval "
            f"over seeds ({REPS} resamples); beside it the env's own episode metric where it logs one (SMAX: "
            "win rate; GridWorld: items collected). 'per agent': the mean divided by "
            "the number of agents. A published number is given only where our references state it; read its "
            "metric before comparing.", "",
            markdown_table(rows, TABLE_FIELDS) if rows else "No reproduce_*.csv yet.", "", *replayed(results)]
    out = results / "reproduce_table.md"
    out.write_text("\n".join(text))
    return out
