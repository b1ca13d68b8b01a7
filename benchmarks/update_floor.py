"""Floors of one gradient step in the BenchMARL comparison, on one CPU thread: what any library must pay.

- ``mlp``: plain torch doing the agent network's part of a step (``compare_benchmarl.py --model mlp``:
  128 transitions x 4 agents, MLP 256x256 Tanh): online forward and backward, target forward on the next
  observations, a 1-step TD loss on the chosen actions and a fused Adam step (one kernel over all
  parameters; torch's default per-tensor loop costs about 1 ms more). No mixer, no replay, no
  TensorDicts.
- ``gru``: only the matrix products that QMIX's update with a GRU agent (``--model gru``: GRU(obs -> 128)
  and a linear head, 600 sequence steps x 4 agents: 6 whole episodes of 100 steps, or 24 pieces of 25)
  cannot avoid: the input projections of the online and target GRUs, their L + (L + 1) sequential
  recurrent products, and the backward's recurrent products and weight gradients. The head, gates and
  mixer are left out.

Each floor is a lower bound on a step's time, so ``1 / floor`` bounds gradient steps/s from above.
Beside each floor, the script times our own gradient step (``update.gradient_step`` of QMIX built as
``compare_benchmarl.py`` builds it, on random batches of balance's sizes: no env, no replay).

    python benchmarks/update_floor.py
"""
from __future__ import annotations

import statistics
import time

import torch

from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.update import gradient_step

# VMAS balance, 4 agents, discrete actions, as make_env describes it
BALANCE = EnvSpecInfo(n_agents=4, obs_dim=16, state_dim=64, n_actions=9, continuous=False, action_low=None,
                      action_high=None, has_action_mask=False, max_steps=100)
ALGO = dict(name="qmix", mixer="qmix", mixer_options=dict(hypernet_layers=1), lr=5e-5, gamma=0.99, td_lambda=0,
            double_q=False, target_tau=0.005, target_hard_interval=None, grad_clip=5)


def mlp_floor(rows: int = 512, hidden: int = 256, repeats: int = 200) -> float:
    obs_dim, actions = BALANCE.obs_dim, BALANCE.n_actions

    def net() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(obs_dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                                   torch.nn.Tanh(), torch.nn.Linear(hidden, actions))

    online, target = net(), net()
    opt = torch.optim.Adam(online.parameters(), lr=5e-5, fused=True)
    obs, next_obs = torch.randn(rows, obs_dim), torch.randn(rows, obs_dim)
    action, reward = torch.randint(0, actions, (rows, 1)), torch.randn(rows)

    def step() -> None:
        q = online(obs).gather(-1, action).squeeze(-1)
        with torch.no_grad():
            y = reward + 0.99 * target(next_obs).max(-1).values
        opt.zero_grad()
        (q - y).square().mean().backward()
        opt.step()

    return _time(step, repeats)


def _time(step, repeats: int) -> float:
    step()
    t = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t) / repeats


def gru_floor(rows: int = 24, steps: int = 100, in_dim: int = 16, hidden: int = 128, repeats: int = 20) -> float:
    x = torch.randn(steps * rows, in_dim)
    w_ih, w_hh = torch.randn(3 * hidden, in_dim), torch.randn(3 * hidden, hidden)
    b = torch.randn(3 * hidden)
    h, g = torch.randn(rows, hidden), torch.randn(rows, 3 * hidden)
    big_h, big_g = torch.randn(steps * rows, hidden), torch.randn(steps * rows, 3 * hidden)

    def step() -> None:
        for _ in range(2):  # online and target input projections
            torch.addmm(b, x, w_ih.t())
        for _ in range(2 * steps + 1):  # online (L) and target (L + 1) recurrent products
            torch.addmm(b, h, w_hh.t())
        for _ in range(steps):  # backward through the recurrence
            torch.mm(g, w_hh)
        big_g.t() @ big_h  # weight gradient of W_hh
        big_g.t() @ x  # weight gradient of W_ih (the observations need no gradient)

    return _time(step, repeats)


def ours(model: dict, batch: int, seq_len: int, repeats: int) -> float:
    parts = build_value_decomposition(ALGO, model, BALANCE, "cpu", total_frames=10**6)
    hidden = model["hidden_dim"] if model["type"] == "gru" else None
    data = random_sequences(batch=batch, seq_len=seq_len, n_agents=BALANCE.n_agents, obs_dim=BALANCE.obs_dim,
                            n_actions=BALANCE.n_actions, state_dim=BALANCE.state_dim, hidden_dim=hidden,
                            generator=torch.Generator().manual_seed(0))
    return _time(lambda: gradient_step(parts, data), repeats)


def main() -> None:
    torch.set_num_threads(1)
    mlp = dict(type="mlp", hidden_dim=256, layers=2, activation="tanh", agent_id=False)
    print(f"mlp: floor {mlp_floor() * 1e3:.2f} ms per step; ours {ours(mlp, 128, 1, 200) * 1e3:.2f} ms")
    gru = dict(type="gru", hidden_dim=128, agent_id=False, input_layers=0)
    for batch, steps in ((6, 100), (24, 25)):
        ours_gru = statistics.median(ours(gru, batch, steps, 10) for _ in range(3))
        floor = gru_floor(rows=batch * BALANCE.n_agents, steps=steps)
        print(f"gru, {batch} x {steps} steps: floor {floor * 1e3:.2f} ms per step (matrix products only); "
              f"ours {ours_gru * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
