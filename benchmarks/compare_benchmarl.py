"""marl-torchrl against BenchMARL on the same task with matched settings, in one invocation, alternating.

For each seed it runs BenchMARL (``benchmarl_driver.py`` in the venv made by ``setup_benchmarl.sh``), then
marl-torchrl (``marl_torchrl.train``), one after the other so both see the same machine load, with:
VMAS ``balance`` (4 agents, discrete, 100-step episodes), ``--envs`` envs x ``--frames-per-batch`` frames per
iteration, ``--updates`` gradient steps per iteration, Adam at ``--lr``, soft target updates (tau 0.005),
gamma 0.99, grad-norm clip 5, epsilon 0.8 -> 0.01 over a third of the frames, 1-step TD targets without
double Q, QMIX's mixer with one-layer hypernetworks (embed 32), one torch thread each, shared agent
network without agent id and with torch's default initialisation, and 32 greedy evaluation episodes at
the end.

- ``--model mlp``: MLP 256x256 Tanh; a batch is ``--batch`` transitions on both sides (ours: 1-step
  sequences).
- ``--model gru``: BenchMARL's GRU model with ``--gru-hidden`` units and no MLP after it (GRU(obs -> H)
  and a linear head); BenchMARL samples ceil(batch / 600) = one 600-step sequence per gradient step (its
  sequences are the whole collected rollout per env). Ours: the same network (``model.input_layers=0``:
  the GRU reads the observation, then a linear head) on 600 sequence steps per gradient step, as many as
  BenchMARL's: ``600 / --gru-seq-len`` sequences of ``--gru-seq-len`` steps. The default, 100, is whole
  episodes (6 x 100) unrolled from h = 0; shorter sequences cut episodes into pieces that start from the
  hidden state stored at collection (R2D2-style, no burn-in), which is not the same gradient.

Prints and writes (``benchmarks/results/benchmarl_<algorithm>_<model>.csv`` and ``.png``) for each
library and seed: end-to-end frames/s (frames / training wall time, evaluations included), collection
frames/s, gradient steps/s, final greedy return; then the ratios ours / theirs of the mean speeds and the
difference ours - theirs of the mean returns.

    bash benchmarks/setup_benchmarl.sh
    python benchmarks/compare_benchmarl.py --algorithm qmix --model mlp --frames 120000 --seeds 3
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
VENV_PYTHON = ROOT / "benchmarks" / ".venv-benchmarl" / "bin" / "python"
METRICS = ["end_to_end_fps", "collection_fps", "updates_per_s", "final_return"]


def run_benchmarl(a: argparse.Namespace, seed: int) -> dict:
    spec = {"algorithm": a.algorithm, "model": a.model, "frames": a.frames, "seed": seed, "envs": a.envs,
            "frames_per_batch": a.frames_per_batch, "updates": a.updates, "batch": a.batch, "lr": a.lr,
            "eval_episodes": 32, "threads": 1}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([str(VENV_PYTHON), str(ROOT / "benchmarks" / "benchmarl_driver.py"), json.dumps(spec), out.name],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = json.load(open(out.name))
    its = d["iterations"]
    return {
        "end_to_end_fps": a.frames / sum(i["timers/iteration_time"] for i in its),
        "collection_fps": statistics.fmean(i["counters/current_frames"] / i["timers/collection_time"] for i in its),
        "updates_per_s": statistics.fmean(a.updates / i["timers/training_time"] for i in its),
        "final_return": statistics.fmean(d["eval_returns"][-1]),
        "version": d["library"],
    }


def ours_overrides(a: argparse.Namespace, seed: int, run_dir: Path) -> list[str]:
    o = [f"algorithm={a.algorithm}", "env=vmas/balance", f"env.num_envs={a.envs}", "env.max_steps=100",
         f"total_frames={a.frames}", f"seed={seed}", "threads=1", f"collector.frames_per_batch={a.frames_per_batch}",
         f"train.updates_per_batch={a.updates}", f"algorithm.lr={a.lr}", "algorithm.gamma=0.99",
         "algorithm.td_lambda=0", "algorithm.double_q=false", "algorithm.target_tau=0.005",
         "algorithm.target_hard_interval=null", "algorithm.grad_clip=5", "algorithm.eps_start=0.8",
         "algorithm.eps_end=0.01", "algorithm.eps_anneal_fraction=0.3333", "model.agent_id=false",
         "model.orthogonal_init=false",  # torch's default init, as BenchMARL's torchrl networks
         "eval.episodes=32", f"eval.interval_frames={a.frames}", f"checkpoint.interval_frames={10 * a.frames}",
         "logger=[csv]", f"hydra.run.dir={run_dir}"]
    if a.algorithm == "qmix":
        o.append("algorithm.mixer_options.hypernet_layers=1")
    if a.model == "mlp":
        o += ["model.type=mlp", "model.hidden_dim=256", "model.layers=2", "model.activation=tanh",
              "replay.seq_len=1", f"replay.batch_size={a.batch}", f"replay.capacity={a.frames}",
              f"replay.warmup={a.batch}"]
    else:
        batch = 600 // a.gru_seq_len
        o += ["model.type=gru", f"model.hidden_dim={a.gru_hidden}", "model.input_layers=0",
              f"replay.seq_len={a.gru_seq_len}", f"replay.batch_size={batch}",
              f"replay.capacity={a.frames // a.gru_seq_len}", f"replay.warmup={batch}"]
    return o


def run_ours(a: argparse.Namespace, seed: int, out: Path) -> dict:
    run_dir = out / f"ours_{a.algorithm}_{a.model}_s{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a rerun would append to the old run's training_log.csv
    subprocess.run([sys.executable, "-m", "marl_torchrl.train", *ours_overrides(a, seed, run_dir)], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(run_dir / "training_log.csv") as f:
        rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    return {
        "end_to_end_fps": rows[-1]["frames"] / rows[-1]["time/elapsed_s"],
        "collection_fps": statistics.fmean(r["time/collection_fps"] for r in rows),
        "updates_per_s": statistics.fmean(r["time/updates_per_s"] for r in rows if "time/updates_per_s" in r),
        "final_return": rows[-1]["eval/ep_reward"],
        "version": "marl-torchrl",
    }


def plot(rows: list[dict], ratios: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.6))
    for ax, m in zip(axes, METRICS):
        for i, lib in enumerate(("BenchMARL", "marl-torchrl")):
            vals = [r[m] for r in rows if r["library"] == lib]
            ax.bar(i, statistics.fmean(vals), yerr=statistics.pstdev(vals), capsize=4, color=("tab:grey", "tab:blue")[i])
            ax.scatter([i] * len(vals), vals, color="k", s=8, zorder=3)
        ax.set_xticks([0, 1], ["BenchMARL", "ours"])
        how = "ours - theirs" if m == "final_return" else "ours/theirs"
        ax.set_title(f"{m}\n{how} = {ratios[m]:.2f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithm", choices=["qmix", "vdn", "iql"], default="qmix")
    p.add_argument("--model", choices=["mlp", "gru"], default="mlp")
    p.add_argument("--frames", type=int, default=120_000)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (--first-seed, --first-seed + 1, ...)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--envs", type=int, default=10)
    p.add_argument("--frames-per-batch", type=int, default=6000)
    p.add_argument("--updates", type=int, default=1000, help="gradient steps per iteration")
    p.add_argument("--batch", type=int, default=128, help="transitions per gradient step (mlp)")
    p.add_argument("--gru-seq-len", type=int, default=100, choices=[100, 50, 25, 20, 10],
                   help="ours, gru: steps per sequence (100 = whole episodes); 600 / this sequences per step")
    p.add_argument("--gru-hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--name", help="result file stem (default benchmarl_<algorithm>_<model>)")
    a = p.parse_args()
    if not VENV_PYTHON.exists():
        sys.exit(f"error: no BenchMARL venv at {VENV_PYTHON}; run: bash benchmarks/setup_benchmarl.sh")
    out = ROOT / "benchmarks" / "runs" / "benchmarl_compare"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        for lib, fn in (("BenchMARL", run_benchmarl), ("marl-torchrl", lambda a, s: run_ours(a, s, out))):
            r = {"library": lib, "seed": seed, **fn(a, seed)}
            rows.append(r)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)
    mean = lambda lib, m: statistics.fmean(r[m] for r in rows if r["library"] == lib)  # noqa: E731
    # speeds: ours / theirs; returns (negative on balance early on): ours - theirs
    ratios = {m: mean("marl-torchrl", m) / mean("BenchMARL", m) for m in METRICS[:-1]}
    ratios["final_return"] = mean("marl-torchrl", "final_return") - mean("BenchMARL", "final_return")
    for m in METRICS:
        how = "ours - theirs" if m == "final_return" else "ours/theirs"
        print(f"{m}: BenchMARL {mean('BenchMARL', m):.4g}  ours {mean('marl-torchrl', m):.4g}  {how} {ratios[m]:.2f}")
    stem = a.name or f"benchmarl_{a.algorithm}_{a.model}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        for m in METRICS:
            label = "difference_ours_minus_theirs" if m == "final_return" else "ratio_ours_over_theirs"
            w.writerow({"library": label, "seed": m, METRICS[0]: round(ratios[m], 3)})
    plot(rows, ratios, RESULTS / f"{stem}.png", f"{a.algorithm.upper()} {a.model.upper()} on VMAS balance, "
         f"{a.frames} frames, {a.seeds} seeds, 1 thread")


if __name__ == "__main__":
    main()
