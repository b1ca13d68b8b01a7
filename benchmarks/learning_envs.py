"""Learning benchmarks on the env families beyond VMAS: several seeds per (suite, algorithm), CPU.

A suite is one env with its settings and the algorithms run on it (``SUITES``). Each (algorithm, seed)
is a real ``marl-train`` job (``--jobs`` at a time, one torch thread each), skipped when its run
directory already holds a log that reaches ``--frames``. Results under ``benchmarks/results/``:

- ``<suite>_runs.csv``: a row per run: final greedy return (and battle win rate on SMAX) at
  ``--frames``, wall time, collection frames/s, gradient updates/s, end-to-end frames/s;
- ``<suite>_summary.csv``: mean and std over seeds, plus a uniformly random (mask-respecting) policy;
- ``<suite>_curves.png``: greedy evaluation return against frames (``<suite>_winrate.png`` on SMAX).

    python benchmarks/learning_envs.py --suite gridworld25 --seeds 0 1 2 --jobs 2
    python benchmarks/learning_envs.py --suite smax_3m
"""
from __future__ import annotations

import argparse

import torch
from learning_balance import RESULTS, ROOT, collect, finished, launch, plot, run_all, write_results
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
    p.add_argument("--summarise-only", action="store_true", help="only read finished runs")
    args = p.parse_args()
    suite = SUITES[args.suite]
    frames = args.frames or suite["frames"]
    algos = args.algorithms or list(suite["algorithms"])
    out = ROOT / "benchmarks" / "runs" / args.suite
    out.mkdir(parents=True, exist_ok=True)
    common = suite["env"] + COMMON
    todo = [(a, s) for a in algos for s in args.seeds if not finished(out / f"{a}_s{s}", frames)]
    if not args.summarise_only:
        run_all(todo, lambda a, s: launch(a, s, frames, out, suite["algorithms"][a], common), args.jobs)
    results, rows = collect(out, algos, args.seeds, frames)
    ret, std, m = random_policy_return(suite["env"])
    randoms = {"random policy": (ret, std)}
    write_results(args.suite, results, rows, randoms)
    plot(results, {"random policy": ret}, RESULTS / f"{args.suite}_curves.png", title=suite["title"])
    if any(r.get("won_curve") for runs in results.values() for r in runs):
        won = {"random policy": m.get("eval/battle_won", 0.0)}
        plot(results, won, RESULTS / f"{args.suite}_winrate.png", title=suite["title"], curve="won_curve",
             ylabel="greedy eval battle win rate (32 episodes)")


if __name__ == "__main__":
    main()
