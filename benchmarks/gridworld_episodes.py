"""Where GridWorld25's greedy teams fall short: per-episode items, lengths and the agents' action-value gaps.

For each run's final model, ``--episodes`` greedy decentralised episodes (fresh env seeds, ``1000 + i`` for
the i-th run) are split into complete ones (all food collected) and stuck ones (the time limit reached with
food left). For both it reports the items histogram and the mean length; for the stuck ones the distance
(cells, Chebyshev) from each food item still there at the end to its nearest agent; and the mean gap
between each agent's best and second-best action value, early (steps 0-29) and late (steps 60-99).

    python benchmarks/gridworld_episodes.py benchmarks/runs/reproduce/gridworld25/qmix_s{0,1,2}

writes ``results/gridworld25_episodes.csv`` (one row per run).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marl_torchrl.evaluate import load_policy

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ["run", "episodes", "items_mean", "items_hist_0_to_4", "complete_share", "complete_len", "stuck_len",
          "stuck_food_dist_hist_0_4_8_12_16_20_24", "q_gap_complete_early", "q_gap_stuck_early", "q_gap_stuck_late",
          "max_q_complete_early", "max_q_stuck_late"]


def _mean(x: torch.Tensor) -> float:
    return round(float(x.float().mean()), 4) if x.numel() else float("nan")


@torch.no_grad()
def episodes(run_dir: Path, n: int, seed: int) -> dict:
    env, policy, cfg, info = load_policy(str(run_dir / "models" / "final_model.pt"), episodes=n, seed=seed)
    steps = info.max_steps
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        td = env.rollout(steps, policy, break_when_any_done=False)
    first = td["next", "done"].squeeze(-1).float().argmax(1)  # each env's first episode ends here
    rows = torch.arange(n)
    items = td["next", "items_collected"].squeeze(-1)[rows, first]
    n_food = int(env.base_env.n_food)
    complete, stuck = items == n_food, items < n_food
    top2 = td["agents", "action_value"].topk(2, dim=-1).values  # [E, T, A, 2]
    gap, best = top2[..., 0] - top2[..., 1], top2[..., 0]
    obs = td["next", "agents", "observation"][stuck, steps - 1]  # [S, A, obs]: stuck episodes' last step
    food = obs[..., 2: 2 + 3 * n_food].reshape(*obs.shape[:2], n_food, 3)  # [S, A, F, (dx, dy, present)]
    dist = food[..., :2].abs().amax(-1) * (env.base_env.size - 1)
    left = dist.amin(1)[food[:, 0, :, 2] > 0]  # per remaining item: its nearest agent's distance
    late = slice(60, steps)
    return {"run": run_dir.name, "episodes": n, "items_mean": _mean(items),
            "items_hist_0_to_4": ";".join(str(int((items == k).sum())) for k in range(n_food + 1)),
            "complete_share": _mean(complete), "complete_len": _mean(first[complete] + 1),
            "stuck_len": _mean(first[stuck] + 1),
            "stuck_food_dist_hist_0_4_8_12_16_20_24": ";".join(str(int(c)) for c in torch.histc(left, 6, 0, 24)),
            "q_gap_complete_early": _mean(gap[complete, :30]), "q_gap_stuck_early": _mean(gap[stuck, :30]),
            "q_gap_stuck_late": _mean(gap[stuck, late]), "max_q_complete_early": _mean(best[complete, :30]),
            "max_q_stuck_late": _mean(best[stuck, late])}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run dirs with models/final_model.pt")
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--out", type=Path, default=RESULTS / "gridworld25_episodes.csv")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [episodes(run, args.episodes, 1000 + i) for i, run in enumerate(args.runs)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    for row in rows:
        print(row)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
