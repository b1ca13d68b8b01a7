"""Learning benchmarks on the env families beyond VMAS: several seeds per (suite, algorithm), CPU.

A suite is one env with its settings and the algorithms run on it (``SUITES``). The runs are Hydra multiruns
of ``marl-train`` with ``resume=auto`` as in ``learning_balance.py`` (``--jobs`` at a time, one torch thread each,
in ``benchmarks/runs/<suite>/<algorithm>_s<seed>``; a run finished at ``--frames`` or beyond is skipped). Results
under ``benchmarks/results/`` (``learning_summary.py``, statistics of ``marl_torchrl.report``):

- ``<suite>_runs.csv``: a row per run: final greedy return (and battle win rate on SMAX) at
  ``--frames``, wall time, collection frames/s, gradient updates/s, end-to-end frames/s;
- ``<suite>_summary.csv``: mean [95% CI] and IQM over seeds, plus a uniformly random (mask-respecting) policy;
- ``<suite>_curves.png``: greedy evaluation return against frames (``<suite>_winrate.png`` on SMAX).

    python benchmarks/learning_envs.py --suite gridworld25 --seeds 0 1 2 --jobs 2
    python benchmarks/learning_envs.py --suite smax_3m
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from learning_balance import RESULTS, ROOT, run_and_summarise
from tensordict.nn import TensorDictModule

COMMON = ["collector.frames_per_batch=6400", "train.updates_per_batch=16", "replay.batch_size=32",
          "replay.capacity=2000", "model.type=gru", "model.hidden_dim=64", "threads=1", "eval.episodes=32",
          "eval.interval_frames=50000", "checkpoint.interval_frames=1000000", "logger=[csv]"]

SUITES = {
    "gridworld25": {
        "title": "GridWorld25 (4 agents, 4 food, 25x25), GRU agents, CPU",
        "env": ["env=gridworld/gridworld25", "env.num_envs=64"],
        "algorithms": {"qmix": ["algorithm=qmix"]},
        "frames": 1_000_000,
    },
    "lbf_8x8_2p_2f_coop": {
        "title": "LBF Foraging-8x8-2p-2f-coop-v3, GRU agents, CPU",
        "env": ["env=lbf/Foraging-8x8-2p-2f-coop-v3", "env.num_envs=16"],
        # qmix_utd4: 4x the gradient steps per frame (1 per 100 frames, nearer EPyMARL's 1 per episode)
        "algorithms": {"qmix": ["algorithm=qmix"], "qmix_utd4": ["algorithm=qmix", "train.updates_per_batch=64"]},
        "frames": 1_000_000,
    },
    "simple_spread": {
        "title": "PettingZoo MPE simple_spread (3 agents, 25 steps), GRU agents, CPU",
        "env": ["env=pettingzoo/simple_spread", "env.num_envs=32"],
        # *_utd8: 8x the gradient steps per frame (128 per 6400 frames = 256 episodes), nearer PyMARL's one per episode
        "algorithms": {"qmix": ["algorithm=qmix"], "vdn": ["algorithm=vdn"],
                       "qmix_utd8": ["algorithm=qmix", "train.updates_per_batch=128"],
                       "vdn_utd8": ["algorithm=vdn", "train.updates_per_batch=128"]},
        "frames": 500_000,
    },
    "smax_3m": {
        "title": "SMAX 3m (JaxMARL, heuristic enemy), GRU agents, CPU",
        "env": ["env=smax/3m", "env.num_envs=64"],
        "algorithms": {"qmix": ["algorithm=qmix"], "facmac": ["algorithm=facmac"]},
        "frames": 600_000,
    },
}


def masked_random_policy(env) -> TensorDictModule:
    """Uniform over each agent's available actions (all actions where the env has no mask)."""
    from marl_torchrl import keys
    from marl_torchrl.envs import describe

    info = describe(env)

    def act(obs, mask=None):
        probs = torch.ones(*obs.shape[:-1], info.n_actions) if mask is None else mask.float()
        return torch.multinomial(probs.flatten(0, -2), 1).view(obs.shape[:-1])

    in_keys = [keys.OBS] + ([keys.ACTION_MASK] if info.has_action_mask else [])
    return TensorDictModule(act, in_keys=in_keys, out_keys=[keys.ACTION])


def random_policy_return(env_overrides: list[str], episodes: int = 64, seed: int = 123) -> tuple[float, float, dict]:
    from hydra import compose, initialize_config_dir

    from marl_torchrl.config import CONFIG_DIR
    from marl_torchrl.envs import describe, make_env
    from marl_torchrl.evaluate import evaluate_policy

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=env_overrides)
    torch.manual_seed(seed)
    env = make_env(cfg.env, num_envs=episodes, seed=seed)
    m = evaluate_policy(env, masked_random_policy(env), max_steps=describe(env).max_steps)
    return m["eval/ep_reward"], m["eval/std_ep_reward"], m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", required=True, choices=sorted(SUITES))
    p.add_argument("--algorithms", nargs="+", help="a subset of the suite's algorithms")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--frames", type=int, help="default: the suite's")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--results", type=Path, default=RESULTS, help="where the CSV/PNG go (default %(default)s)")
    p.add_argument("--summarise-only", action="store_true", help="only read finished runs")
    args = p.parse_args()
    suite = SUITES[args.suite]
    algos = args.algorithms or list(suite["algorithms"])
    unknown = [a for a in algos if a not in suite["algorithms"]]
    if unknown:
        print(f"error: --algorithms {' '.join(unknown)}: not in suite {args.suite} "
              f"({' '.join(suite['algorithms'])})", file=sys.stderr)
        raise SystemExit(2)
    out = ROOT / "benchmarks" / "runs" / args.suite
    raise SystemExit(run_and_summarise(args.suite, algos, args.seeds, args.frames or suite["frames"], args.jobs, out,
                                       suite["env"] + COMMON, table=suite["algorithms"],
                                       summarise_only=args.summarise_only,
                                       randoms=lambda: {"random policy": random_policy_return(suite["env"])[0]},
                                       results=args.results))


if __name__ == "__main__":
    main()
