"""Learning benchmark on VMAS balance (4 agents), GRU agents, several seeds, CPU.

A variant is an algorithm plus overrides (see ``VARIANTS``: e.g. ``facmac_continuous`` is FACMAC with
``env.continuous_actions=true``). The runs are Hydra multiruns of ``marl-train`` (``multirun.py``: the variants
that share their overrides run as one sweep, ``--jobs`` jobs at a time through joblib, one torch thread each, in
``<out>/<variant>_s<seed>``, output in ``<out>/sweep.log``) with ``resume=auto``: a run dir already finished at
``--frames`` or beyond is skipped (so runs are shared between reports), an interrupted one continues. Then
``learning_summary.py`` writes, with the statistics of ``marl_torchrl.report``, under ``benchmarks/results/``:
``<name>_runs.csv`` (a row per run), ``<name>_summary.csv`` (per variant: mean [95% CI] and IQM of the final
greedy return, mean throughput, and a random policy's return on the same env, discrete and, when a variant is
continuous, continuous actions) and ``<name>_curves.png``.

    python benchmarks/learning_balance.py --frames 800000 --seeds 0 1 2 --jobs 2        # QMIX, VDN, IQL
    python benchmarks/learning_balance.py --name facmac_balance --frames 400000 \
        --variants qmix ow_qmix facmac facmac_continuous
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))

from learning_summary import WON, load, write_results  # noqa: E402
from multirun import group_variants, launch, sweep_command  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
COMMON = [
    "env=vmas/balance", "env.num_envs=64", "collector.frames_per_batch=6400", "train.updates_per_batch=16",
    "replay.batch_size=32", "replay.capacity=2000", "model.type=gru", "model.hidden_dim=64", "threads=1",
    "eval.episodes=32", "eval.interval_frames=40000", "checkpoint.interval_frames=400000", "logger=[csv]",
]


VARIANTS = {
    "qmix": ["algorithm=qmix"],
    "vdn": ["algorithm=vdn"],
    "iql": ["algorithm=iql"],
    "qmix_nonmono": ["algorithm=qmix_nonmono"],
    "ow_qmix": ["algorithm=ow_qmix"],
    "cw_qmix": ["algorithm=cw_qmix"],
    "facmac": ["algorithm=facmac"],
    "facmac_continuous": ["algorithm=facmac", "env.continuous_actions=true"],
    "dop": ["algorithm=dop"],
    "dop_continuous": ["algorithm=dop", "env.continuous_actions=true"],
    "pqn_vdn": ["algorithm=pqn_vdn"],
    "pqn_qmix": ["algorithm=pqn_qmix"],
}


def specs(variants, table=None) -> dict[str, tuple[str, list[str]]]:
    """``{variant: (algorithm preset, its other overrides)}`` from ``table`` (default ``VARIANTS``)."""
    table = table or VARIANTS
    return {v: (table[v][0].split("=", 1)[1], table[v][1:]) for v in variants}


def run_and_summarise(name, variants, seeds, frames, jobs, out, common, table=None, summarise_only=False,
                      randoms=None, results=RESULTS) -> int:
    """Launch the sweeps of ``variants`` (of ``table``, default ``VARIANTS``) over ``common`` overrides unless
    ``summarise_only``, then write the results (``randoms()``: baseline label -> return); returns the exit status."""
    status = 0
    if not summarise_only:
        common = [*common, f"total_frames={frames}"]
        status = launch([(g, sweep_command(g, seeds, out, jobs, common)) for g in group_variants(specs(variants, table))],
                        out / "sweep.log")
        if status == 130:
            return status
    runs = load(out, variants, seeds, frames)
    if not runs:
        print(f"no finished runs in {out}", file=sys.stderr)
        return status or 1
    for path in write_results(name, runs, load(out, variants, seeds, frames, WON), randoms() if randoms else {},
                              results):
        print(f"wrote {path}")
    print((Path(results) / f"{name}_summary.csv").read_text())
    return status


def random_policy_return(episodes: int = 128, seed: int = 123, continuous: bool = False) -> tuple[float, float]:
    import torch
    from torchrl.envs.utils import RandomPolicy

    from marl_torchrl.envs import make_env
    from marl_torchrl.evaluate import evaluate_policy

    torch.manual_seed(seed)
    cfg = {"family": "vmas", "task": "balance", "max_steps": 100, "scenario_kwargs": {"n_agents": 4},
           "continuous_actions": continuous}
    env = make_env(cfg, num_envs=episodes, seed=seed)
    m = evaluate_policy(env, RandomPolicy(env.full_action_spec), max_steps=100)
    return m["eval/ep_reward"], m["eval/std_ep_reward"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["qmix", "vdn", "iql"], choices=sorted(VARIANTS))
    p.add_argument("--name", default="balance", help="prefix of the result files")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, default=800_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "balance")
    p.add_argument("--results", type=Path, default=RESULTS, help="where the CSV/PNG go (default %(default)s)")
    p.add_argument("--summarise-only", action="store_true", help="only read finished runs in --out")
    args = p.parse_args()

    def randoms() -> dict[str, float]:
        found = {"random policy": random_policy_return()[0]}
        if any("env.continuous_actions=true" in VARIANTS[v] for v in args.variants):
            found["random policy (continuous)"] = random_policy_return(continuous=True)[0]
        return found

    raise SystemExit(run_and_summarise(args.name, args.variants, args.seeds, args.frames, args.jobs, args.out.resolve(),
                                       COMMON, summarise_only=args.summarise_only, randoms=randoms,
                                       results=args.results))


if __name__ == "__main__":
    main()
