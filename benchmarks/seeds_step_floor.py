"""Where the time of a stacked gradient step goes, against what it cannot avoid (one CPU thread).

Three figures per K (``--seeds``), at ``seeds_throughput.py``'s sizes (QMIX, GRU agents, balance's shapes,
``--batch`` sequences x ``--seq-len`` steps):

- ``step``: :meth:`~marl_torchrl.seeds.StackedLearners.step` as timed by ``seeds_throughput.py`` (CPU time,
  the minimum over ``--repeats``; the plain learner's ``gradient_step`` as K = 0);
- ``overhead``: the same step on 1 sequence instead of ``--batch``: the same ops and Python, almost no
  arithmetic. This is what stacking can share between seeds (per-op and per-call cost);
- ``matmul floor``: only the matrix products of that step (online and target agent networks, the GRU's input
  projection and recurrence step by step, their backward, the four QMIX hypernetworks online and target and
  their backward), as ``torch.bmm`` over K on the step's shapes: no gate, activation, mixing, loss or
  optimiser arithmetic. One step cannot take less.

And the step's biggest pieces, each timed alone on the step's shapes (:func:`components`), per seed: the
plain learner's own modules against the K-stack's (a profiler's clock is unreliable on a loaded machine;
CPU time of each piece alone is not).

    python benchmarks/seeds_step_floor.py --seeds 1 8
"""
from __future__ import annotations

import argparse
import time

import torch

from seeds_throughput import ALGO, BALANCE, MODEL, batches
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.seeds import StackedLearners
from marl_torchrl.seeds.memory import keep_freed_memory
from marl_torchrl.update import gradient_step


def min_cpu_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times) * 1e3


def step_fn(k: int, batch: int, seq_len: int):
    """The timed call: the plain learner's step for ``k = 0``, else the K-stack's."""
    args = argparse.Namespace(batch=batch, seq_len=seq_len)
    if k == 0:
        torch.manual_seed(0)
        parts, data = build_value_decomposition(ALGO, MODEL, BALANCE, "cpu", total_frames=10**6), batches([0], args)[0]
        return lambda: gradient_step(parts, data)
    learners = StackedLearners.build(range(k), ALGO, MODEL, BALANCE, "cpu", total_frames=10**6)
    data = batches(range(k), args)
    return lambda: learners.step(data)


def matmul_floor_fn(k: int, batch: int, seq_len: int):
    """Every matrix product of one stacked step, as ``bmm`` over K (K = 0 is timed as 1)."""
    k, a, h, hyper, embed = max(k, 1), BALANCE.n_agents, MODEL.hidden_dim, 64, 32
    steps, seq_rows, mix_rows = seq_len + 1, batch * a, batch * seq_len
    rows, s = steps * seq_rows, BALANCE.state_dim
    agent = [(rows, BALANCE.obs_dim + a, h), (rows, h, 3 * h), (rows, h, BALANCE.n_actions)]  # body, input proj, head
    hypernets = [(mix_rows, s, hyper), (mix_rows, hyper, a * embed), (mix_rows, s, embed), (mix_rows, s, hyper),
                 (mix_rows, hyper, embed), (mix_rows, s, embed), (mix_rows, embed, 1)]
    fwd = agent + hypernets
    # backward: every weight gradient (in x rows x out) and the input gradients that reach a parameter
    bwd = [(i, m, o) for m, i, o in fwd] + [(m, o, i) for m, i, o in agent[1:] + [hypernets[1], hypernets[4],
                                                                                   hypernets[6]]]
    shapes = 2 * fwd + bwd  # online and target forwards, the online backward
    pairs = [(torch.randn(k, m, i), torch.randn(k, i, o)) for m, i, o in shapes]
    w_hh, state, grad = torch.randn(k, h, 3 * h), torch.randn(k, seq_rows, h), torch.randn(k, seq_rows, 3 * h)

    def run() -> None:
        for x, w in pairs:
            torch.bmm(x, w)
        for _ in range(2 * steps):  # online and target recurrences
            torch.bmm(state, w_hh)
        for _ in range(steps):  # the recurrence's backward
            torch.bmm(grad, w_hh.transpose(1, 2))

    run.gmac = (sum(m * i * o for m, i, o in shapes) + 3 * steps * seq_rows * h * 3 * h) * k / 1e9
    return run


def components(k: int, batch: int, seq_len: int, repeats: int) -> dict[str, float]:
    """CPU ms per step of the step's pieces, each timed alone on the step's shapes: the online agent networks
    forward and backward (of these, the GRU's share), the target agent networks, the online mixer forward
    and backward, the target mixer. ``k = 0``: the plain learner's own modules on one seed's shapes."""
    torch.manual_seed(0)
    a, h, t = BALANCE.n_agents, MODEL.hidden_dim, seq_len
    if k == 0:
        loss = build_value_decomposition(ALGO, MODEL, BALANCE, "cpu", total_frames=10**6).loss
        rows = batch
    else:
        loss = StackedLearners.build(range(k), ALGO, MODEL, BALANCE, "cpu", total_frames=10**6).loss
        rows = k * batch
    obs, h0 = torch.randn(rows, t + 1, a, BALANCE.obs_dim), torch.zeros(rows, a, h)
    chosen, state = torch.randn(rows, t, a, 1, requires_grad=True), torch.randn(rows, t, BALANCE.state_dim)

    def backward_of(fn):
        return lambda: fn().sum().backward()

    def no_grad(fn):
        def run():
            with torch.no_grad():
                fn()
        return run

    pieces = {
        "agent networks, online, forward + backward": backward_of(lambda: loss.agent_net.unroll(obs, h0)[0]),
        "agent networks, target, forward": no_grad(lambda: loss.agent_net_target.unroll(obs, h0)),
        "mixer, online, forward + backward": backward_of(lambda: loss.mixer(chosen, state)),
        "mixer, target, forward": no_grad(lambda: loss.mixer_target(chosen, state)),
    }
    return {name: min_cpu_ms(fn, repeats) for name, fn in pieces.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    print(f"{'':12s} {'step':>9s} {'overhead':>9s} {'matmul floor':>13s}   (ms CPU per step, min of {args.repeats})")
    for k in [0, *args.seeds]:
        step = min_cpu_ms(step_fn(k, args.batch, args.seq_len), args.repeats)
        overhead = min_cpu_ms(step_fn(k, 1, args.seq_len), args.repeats)
        products = matmul_floor_fn(k, args.batch, args.seq_len)
        floor = min_cpu_ms(products, args.repeats)
        seeds = max(k, 1)
        name = "plain" if k == 0 else f"K = {k}"
        print(f"{name:12s} {step:9.1f} {overhead:9.1f} {floor:13.1f}   per seed: {step / seeds:6.1f} "
              f"{overhead / seeds:6.1f} {floor / seeds:6.1f}  ({products.gmac / seeds:.2f} G multiply-adds per seed, "
              f"{products.gmac / floor * 1e3:.0f} G/s)")
    print(f"\nthe step's pieces, each timed alone (ms CPU per seed, min of {args.repeats}):")
    parts = {k: components(k, args.batch, args.seq_len, args.repeats) for k in [0, *args.seeds]}
    print(f"{'':45s} " + " ".join(f"{'plain' if k == 0 else f'K = {k}':>8s}" for k in parts))
    for name in parts[0]:
        print(f"{name:45s} " + " ".join(f"{parts[k][name] / max(k, 1):8.1f}" for k in parts))

if __name__ == "__main__":
    main()
