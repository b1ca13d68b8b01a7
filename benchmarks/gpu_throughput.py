"""Throughput against the number of parallel envs, everything on one device (GPU mode: ``device=cuda``).

For each env (VMAS ``balance`` with 4 agents, GridWorld25) and each ``--num-envs``, runs a short QMIX
training job (GRU agents, epsilon-greedy) in this process with env, policy, replay and training on
``--device`` and reads its log: collection frames/s, gradient steps/s and end-to-end frames/s (means over
the iterations after the first, which pays for warm-up). One iteration collects ``--steps`` steps of every
env; ``--updates`` gradient steps of ``--batch`` 100-step sequences follow. Results (CSV + PNG) go to
``benchmarks/results/throughput_<device name>.{csv,png}`` with the device's name in every row.

    python benchmarks/gpu_throughput.py --device cuda --num-envs 64 256 1024 4096 8192 16384
    python benchmarks/gpu_throughput.py --device cpu --num-envs 64 256 --iterations 2      # a CPU check
"""
from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
ENVS = {"vmas_balance": ["env=vmas/balance", "env.max_steps=100"], "gridworld25": ["env=gridworld/gridworld25"]}


def measure(env: str, num_envs: int, a: argparse.Namespace) -> dict:
    from hydra import compose, initialize_config_dir

    from marl_torchrl.config import CONFIG_DIR
    from marl_torchrl.train import run

    fpb = num_envs * a.steps
    overrides = [*ENVS[env], "algorithm=qmix", f"device={a.device}", f"env.num_envs={num_envs}",
                 f"collector.frames_per_batch={fpb}", f"total_frames={fpb * a.iterations}",
                 f"train.updates_per_batch={a.updates}", f"replay.batch_size={a.batch}", f"replay.warmup={a.batch}",
                 "replay.capacity=20000",
                 "model.type=gru", "eval.interval_frames=0", f"checkpoint.interval_frames={10 * fpb * a.iterations}",
                 "logger=[csv]", f"threads={a.threads}"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    with tempfile.TemporaryDirectory() as d:
        run(cfg, d)
        with open(Path(d) / "training_log.csv") as f:
            rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)][1:]
    mean = lambda k: statistics.fmean(r[k] for r in rows if k in r)  # noqa: E731
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    return {"env": env, "num_envs": num_envs, "device": name, "collection_fps": round(mean("time/collection_fps")),
            "updates_per_s": round(mean("time/updates_per_s"), 2), "end_to_end_fps": round(mean("time/fps")),
            "batch_sequences": a.batch, "updates_per_iteration": a.updates, "steps_per_iteration": a.steps}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key in zip(axes, ("collection_fps", "updates_per_s", "end_to_end_fps")):
        for env in ENVS:
            pts = [(r["num_envs"], r[key]) for r in rows if r["env"] == env]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=env)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("parallel envs")
        ax.set_title(key)
        ax.legend()
    fig.suptitle(f"QMIX, GRU agents, all on {rows[0]['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--num-envs", type=int, nargs="+", default=[64, 256, 1024, 4096, 8192, 16384])
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    p.add_argument("--steps", type=int, default=100, help="steps of every env per iteration")
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--updates", type=int, default=16)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    rows = []
    for env in a.envs:
        for n in a.num_envs:
            rows.append(measure(env, n, a))
            print(rows[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "throughput_" + re.sub(r"[^A-Za-z0-9]+", "_", rows[0]["device"]).strip("_").lower()
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(rows, RESULTS / f"{stem}.png")


if __name__ == "__main__":
    main()
