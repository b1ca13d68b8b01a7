"""How much a trained mixer amplifies its agents' values, along its greedy team's episodes.

For each checkpoint, ``--episodes`` greedy decentralised episodes are played; at every step the mixer's gain
``sum_i dQ_tot/dq_i`` (VDN: the number of agents) is taken at the agents' own chosen values, beside the
state's norm. A mixer whose gain grows with the state's magnitude turns the agents' small errors into large
errors of ``Q_tot`` wherever the team wanders, which is how QMIX diverged on simple_spread's unbounded state
(benchmarks/README.md, "simple_spread: why QMIX diverged").

    python benchmarks/mixer_gain.py benchmarks/runs/ss_tune/qmix_nostd_s0_diverged/models/checkpoint_256000.pt \\
        benchmarks/runs/ss_tune/qmix_std_statenorm_s1/models/final_model.pt --out ss_qmix

writes ``results/mixer_gain_<out>.csv``: one row per checkpoint and step (means over the episodes).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marl_torchrl import keys
from marl_torchrl.evaluate import load_parts

RESULTS = Path(__file__).resolve().parent / "results"


def gains(path: str, episodes: int, seed: int) -> dict[str, torch.Tensor]:
    """Per step (mean over ``episodes``): greedy team reward, state norm, mixer gain, Q_tot."""
    env, parts, _, info = load_parts(path, episodes=episodes, seed=seed)
    mixer = getattr(parts.loss, "mixer", None)
    if mixer is None or info.max_steps is None:
        raise SystemExit(f"error: {path} has no mixer or its env no time limit")
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        td = env.rollout(info.max_steps, parts.policy, break_when_any_done=False)
    state = td[keys.STATE]  # [E, T, S]
    chosen = td[keys.ACTION_VALUE].gather(-1, td[keys.ACTION].unsqueeze(-1)).detach().requires_grad_(True)
    q_tot = mixer(chosen, state)  # [E, T, 1]
    gain = torch.autograd.grad(q_tot.sum(), chosen)[0].sum((-2, -1))  # [E, T]
    return {"reward": td["next", "reward"].squeeze(-1).mean(0), "state_norm": state.norm(dim=-1).mean(0),
            "gain": gain.mean(0), "q_tot": q_tot.detach().squeeze(-1).mean(0),
            "return": td["next", "reward"].sum(1).mean().expand(state.shape[1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", default="run")
    a = p.parse_args()
    rows = []
    for path in a.checkpoints:
        g = gains(path, a.episodes, a.seed)
        for t in range(len(g["gain"])):
            rows.append({"checkpoint": path, "step": t, **{k: round(float(v[t]), 4) for k, v in g.items()}})
        T = len(g["gain"])
        print(f"{path}: greedy return {float(g['return'][0]):.1f}; gain at step 0 / {T // 2} / {T - 1}: "
              + " / ".join(f"{float(g['gain'][t]):.1f}" for t in (0, T // 2, T - 1)) + "; state norm: "
              + " / ".join(f"{float(g['state_norm'][t]):.2f}" for t in (0, T // 2, T - 1)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"mixer_gain_{a.out}.csv"
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
