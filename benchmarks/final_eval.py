"""Re-evaluate finished runs' final models with many more greedy episodes than training's final evaluation.

A training run's final evaluation plays ``eval.final_episodes`` episodes (128 on SMAX): a win rate of 0.94
measured on 128 battles has a binomial standard error of 0.021, as large as the gaps between the variants
being compared. This plays ``--episodes`` fresh greedy episodes per run (default 2048, standard error 0.005),
all runs on the same env seed (``--eval-seed``, not a training or evaluation seed), so variants are compared
on the same episode starts.

Per run (``<variant>_s<seed>`` directories holding ``models/<--checkpoint>``, default the final model), one row of
``<out>.csv``: the checkpoint's frames, the return, every episode metric of the env family (SMAX:
``battle_won``) and its 95% Wilson interval over the run's episodes. Per variant, ``<out>_summary.csv``: the
mean over seeds with its 95% percentile-bootstrap interval over seeds (``marl_torchrl.report.stats``) and
the pooled episodes' Wilson interval (evaluation noise only). ``<out>.png`` plots each seed and the mean.
Resumable: a run's checkpoint already in the CSV with the same episodes, seed and frames is skipped. An
earlier checkpoint of the same runs (``--checkpoint checkpoint_<frames>.pt``) is summarised as
``<variant>@<frames>``: the same policies earlier in training, not a best-of selection.

    python benchmarks/final_eval.py benchmarks/runs/probes/smax_3m/pqn_ref512_s* --out benchmarks/results/final_eval_smax_3m
"""
from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marl_torchrl.checkpoint import load_checkpoint  # noqa: E402
from marl_torchrl.evaluate import evaluate_policy, load_policy  # noqa: E402
from marl_torchrl.report.stats import bootstrap_ci, wilson_ci as wilson  # noqa: E402
from marl_torchrl.report.tables import write_csv  # noqa: E402

FINAL = "final_model.pt"
RUN_NAME = re.compile(r"(?P<variant>.+)_s(?P<seed>\d+)$")


def evaluate_run(run: Path, episodes: int, batch: int, eval_seed: int, name: str, frames: int) -> dict:
    """One row: the checkpoint ``name`` (written at ``frames``) of ``run`` over ``episodes`` greedy episodes,
    ``batch`` envs at a time."""
    checkpoint = run / "models" / name
    rounds = math.ceil(episodes / batch)
    env, policy, cfg, info = load_policy(str(checkpoint), episodes=batch, seed=eval_seed)
    metrics = evaluate_policy(env, policy, max_steps=info.max_steps, rounds=rounds)
    env.close()
    match = RUN_NAME.match(run.name)
    row = {"task": cfg.env.name, "variant": match["variant"], "seed": int(match["seed"]), "checkpoint": name,
           "frames": frames,
           "episodes": int(metrics["eval/episodes"]), "eval_seed": eval_seed,
           "ep_reward": round(metrics["eval/ep_reward"], 4)}
    for key, value in metrics.items():
        metric = key.split("/", 1)[1]
        if metric not in ("ep_reward", "std_ep_reward", "ep_length", "episodes"):
            low, high = wilson(value * row["episodes"], row["episodes"])
            row.update({metric: round(value, 4), f"{metric}_ci_low": round(low, 4), f"{metric}_ci_high": round(high, 4)})
    return row


def label(row: dict) -> str:
    """A row's group: its variant, and for a checkpoint before the final one the frames it was written at."""
    return row["variant"] if row["checkpoint"] == FINAL else f"{row['variant']}@{int(row['frames']) / 1e6:.2f}M"


def summarise(rows: list[dict], metric: str) -> list[dict]:
    """Per variant: mean over seeds with a bootstrap interval over seeds, and, for an episode metric (a per-episode
    flag such as ``battle_won``), the Wilson interval of all its episodes pooled."""
    out = []
    bases = list(dict.fromkeys(r["variant"] for r in rows))
    order = sorted(rows, key=lambda r: (bases.index(r["variant"]), r["checkpoint"] == FINAL, int(r["frames"])))
    for variant in dict.fromkeys(map(label, order)):  # each variant's checkpoints in order of frames
        runs = sorted((r for r in rows if label(r) == variant), key=lambda r: int(r["seed"]))
        values = [float(r[metric]) for r in runs]
        n = sum(int(r["episodes"]) for r in runs)
        mean, low, high = bootstrap_ci([values])
        pooled = (wilson(sum(float(r[metric]) * int(r["episodes"]) for r in runs), n) if metric != "ep_reward"
                  else (float("nan"), float("nan")))  # episode metrics are per-episode flags, returns are not
        out.append({"variant": variant, "metric": metric, "n_seeds": len(runs),
                    "seeds": ";".join(str(r["seed"]) for r in runs), "per_seed": ";".join(f"{v:.4f}" for v in values),
                    "mean": round(mean, 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
                    "episodes": n, "pooled_ci_low": round(pooled[0], 4), "pooled_ci_high": round(pooled[1], 4)})
    return out


def columns(rows: list[dict]) -> list[str]:
    """Every key of ``rows`` in first-seen order (runs of different envs log different episode metrics)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def plot(summary: list[dict], rows: list[dict], metric: str, path: Path, target: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(summary), 3.6))
    for i, s in enumerate(summary):
        seeds = [float(r[metric]) for r in rows if label(r) == s["variant"]]
        ax.scatter([i] * len(seeds), seeds, color="0.6", s=14, zorder=2)
        ax.errorbar([i], [s["mean"]], yerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]], fmt="o",
                    color="C0", capsize=4, zorder=3)
    if target is not None:
        ax.axhline(target, color="C3", linestyle="--", linewidth=1, label=f"target {target}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(range(len(summary)), [s["variant"] for s in summary], rotation=20, fontsize=8)
    ax.set_ylabel(f"greedy {metric}")
    ax.set_title(f"{rows[0]['task']}: {summary[0]['episodes'] // max(summary[0]['n_seeds'], 1)} episodes a run, "
                 "mean over seeds, 95% bootstrap CI", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories named <variant>_s<seed>")
    p.add_argument("--out", type=Path, required=True, help="output prefix: <out>.csv, <out>_summary.csv, <out>.png")
    p.add_argument("--episodes", type=int, default=2048)
    p.add_argument("--batch", type=int, default=512, help="envs per round")
    p.add_argument("--eval-seed", type=int, default=10_000)
    p.add_argument("--checkpoint", default=FINAL, help="the file under each run's models/ to evaluate")
    p.add_argument("--metric", default=None, help="summary metric (default: the env's first episode metric)")
    p.add_argument("--target", type=float, default=None, help="a reference line on the plot")
    args = p.parse_args()
    runs = [r for r in args.runs if r.is_dir() and RUN_NAME.match(r.name)]
    missing = [r for r in runs if not (r / "models" / args.checkpoint).is_file()]
    if not runs or missing:
        fail(f"no models/{args.checkpoint} in {', '.join(map(str, missing or args.runs))}")
    if args.episodes <= 0 or args.batch <= 0 or args.episodes % args.batch:
        fail(f"--episodes {args.episodes} must be a positive multiple of --batch {args.batch}")
    torch.set_num_threads(1)
    path = args.out.with_suffix(".csv")
    rows = list(csv.DictReader(open(path))) if path.is_file() else []
    for run in runs:
        frames = load_checkpoint(run / "models" / args.checkpoint)["counters"]["frames"]
        same = [r for r in rows if (f"{r['variant']}_s{r['seed']}", r["checkpoint"]) == (run.name, args.checkpoint)]
        if any((r["episodes"], r["eval_seed"], r["frames"]) == (str(args.episodes), str(args.eval_seed), str(frames))
               for r in same):
            print(f"{run.name}/{args.checkpoint}: done, skipped")
            continue
        rows = [r for r in rows if not any(r is o for o in same)]  # an older evaluation of it is replaced
        rows.append(evaluate_run(run, args.episodes, args.batch, args.eval_seed, args.checkpoint, frames))
        print(run.name, rows[-1], flush=True)
        write_csv(rows, columns(rows), path)
    fixed = ("task", "variant", "seed", "checkpoint", "frames", "episodes", "eval_seed", "ep_reward")
    metric = args.metric or next((k for k in rows[0] if k not in fixed and not k.endswith(("_low", "_high"))),
                                 "ep_reward")
    summary = summarise(rows, metric)
    write_csv(summary, columns(summary), path.with_name(path.stem + "_summary.csv"))
    plot(summary, rows, metric, path.with_suffix(".png"), args.target)
    for s in summary:
        print(s)


if __name__ == "__main__":
    main()
