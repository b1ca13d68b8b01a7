"""What a scripted cooperative team earns on an LBF task, and how its return falls with random actions.

The script reads LBF's true state (not the agents' observations): both agents pick the remaining food
nearest to them together, walk (greedily, around blockers) to two different cells next to it, and load
on the same step once both are there. With probability ``eps`` each agent instead takes a uniformly
random valid action, as an epsilon-greedy learner would. The result is the evidence behind the LBF
diagnosis in ``benchmarks/README.md``: the best return a team can reach within the time limit, and the
return of exploration noise around a good policy. Writes ``benchmarks/results/lbf_scripted.csv``.

    python benchmarks/lbf_scripted.py --task Foraging-8x8-2p-2f-coop-v3 --episodes 200
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from marl_torchrl.report.tables import write_csv

NONE, NORTH, SOUTH, WEST, EAST, LOAD = range(6)
MOVES = {NORTH: (-1, 0), SOUTH: (1, 0), WEST: (0, -1), EAST: (0, 1)}
RESULTS = Path(__file__).resolve().parent / "results"


def _valid(base, player) -> list[int]:
    return [a.value for a in base._valid_actions[player]]


def _step_towards(pos, goal, valid, rng) -> int:
    """The valid move that most reduces the Manhattan distance to ``goal`` (random among ties)."""
    dist = lambda p: abs(p[0] - goal[0]) + abs(p[1] - goal[1])  # noqa: E731
    best = [a for a in valid if a in MOVES]
    if not best:
        return NONE
    scores = [dist((pos[0] + MOVES[a][0], pos[1] + MOVES[a][1])) for a in best]
    low = min(scores)
    return int(rng.choice([a for a, s in zip(best, scores) if s == low]))


def scripted_actions(base, rng) -> list[int]:
    """One joint action of the cooperative script for the LBF env ``base`` (``env.unwrapped``)."""
    players = base.players
    foods = list(zip(*np.nonzero(base.field)))
    if not foods:
        return [NONE] * len(players)
    food = min(foods, key=lambda f: sum(abs(p.position[0] - f[0]) + abs(p.position[1] - f[1]) for p in players))
    rows, cols = base.field.shape
    cells = [(food[0] + dy, food[1] + dx) for dy, dx in MOVES.values()]
    cells = [c for c in cells if 0 <= c[0] < rows and 0 <= c[1] < cols and base.field[c] == 0]
    actions, taken = [], set()
    for p in players:
        pos = tuple(p.position)
        if pos in cells and pos not in taken:
            taken.add(pos)
            actions.append(None)  # in place: loads once everyone is
            continue
        free = [c for c in cells if c not in taken] or cells
        goal = min(free, key=lambda c: abs(c[0] - pos[0]) + abs(c[1] - pos[1]))
        taken.add(goal)
        actions.append(_step_towards(pos, goal, _valid(base, p), rng))
    ready = all(a is None for a in actions)
    return [LOAD if ready else (NONE if a is None else a) for a in actions]


def run_episodes(task: str, episodes: int, eps: float, seed: int) -> tuple[float, float, float]:
    """Mean team return (sum of the agents' rewards), its standard error and the mean episode length."""
    import gymnasium as gym
    import lbforaging  # noqa: F401

    env, rng = gym.make(task), np.random.default_rng(seed)
    returns, lengths = [], []
    for ep in range(episodes):
        env.reset(seed=seed * 100_000 + ep)
        base, total, done, steps = env.unwrapped, 0.0, False, 0
        while not done:
            acts = scripted_actions(base, rng)
            acts = [int(rng.choice(_valid(base, p))) if rng.random() < eps else a for a, p in zip(acts, base.players)]
            _, reward, term, trunc, _ = env.step(tuple(acts))
            total, steps, done = total + float(sum(reward)), steps + 1, term or trunc
        returns.append(total)
        lengths.append(steps)
    r = np.asarray(returns)
    return float(r.mean()), float(r.std(ddof=1) / math.sqrt(len(r))), float(np.mean(lengths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="Foraging-8x8-2p-2f-coop-v3")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for eps in args.eps:
        mean, sem, length = run_episodes(args.task, args.episodes, eps, args.seed)
        rows.append({"task": args.task, "eps": eps, "episodes": args.episodes, "return_mean": round(mean, 4),
                     "return_sem": round(sem, 4), "episode_length": round(length, 2)})
        print(f"eps={eps:<5} return {mean:.3f} +- {1.96 * sem:.3f} (95%)  length {length:.1f}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "lbf_scripted.csv"
    write_csv(rows, list(rows[0]), path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
