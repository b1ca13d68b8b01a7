"""How K seeds can share one forward/backward: the approaches compared (findings in docs/stacked_seeds.md).

Forward + backward of the learner's loss, per seed, on one CPU thread, QMIX with GRU agents at balance's
sizes, for K = 1, 2, 4, 8, medians over ``--repeats`` rounds that alternate the approaches:

- ``plain``: K separate ``ValueDecompositionLoss`` s, one after the other (what K processes would do);
- ``vmap``: ``torch.func.vmap(torch.func.grad(functional_call(loss, ...)))`` over parameters stacked by
  ``torch.func.stack_module_state``, with ``nn.GRU`` (it has a batching rule only under ``grad``, where
  it decomposes into per-step cell ops; plain ``vmap`` of the forward fails: "Batching rule not
  implemented for aten::gru.input");
- ``stacked``: :class:`~marl_torchrl.seeds.StackedValueDecompositionLoss` (a seed dimension in every
  layer: batched matrix products, a GRU over K weight sets with a hand-written backward).

And the GRU alone (``--gru``): ``vmap(grad(...))`` over an explicit cell loop, :func:`~marl_torchrl.seeds.gru.stacked_gru`,
``nn.GRU`` per seed. Prints a table and writes ``<results>/seeds_feasibility.csv``.

    python benchmarks/seeds_feasibility.py --repeats 3
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from seeds_throughput import ALGO, BALANCE, MODEL, batches, write_csv  # the sibling script (benchmarks/ is on sys.path)
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.seeds import StackedValueDecompositionLoss
from marl_torchrl.seeds.gru import stacked_gru
from marl_torchrl.seeds.memory import keep_freed_memory


class _Wrapped(torch.nn.Module):
    """torchrl's ``LossModule.named_parameters`` takes no ``remove_duplicate``, which ``functional_call``
    passes: a plain module around the loss lets ``torch.func`` read it."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, td):
        return self.loss(td)["loss"]


def loss_approaches(k: int, args) -> dict:
    losses = []
    for seed in range(k):
        torch.manual_seed(seed)
        losses.append(build_value_decomposition(ALGO, MODEL, BALANCE, "cpu", total_frames=10**6).loss)
    data = batches(range(k), args)

    def plain():
        for loss, td in zip(losses, data):
            loss.zero_grad(set_to_none=True)
            loss(td)["loss"].backward()

    wrapped = [_Wrapped(loss) for loss in losses]
    params, buffers = stack_module_state(wrapped)
    trainable = {n: p for n, p in params.items() if p.requires_grad}
    frozen = {n: p for n, p in params.items() if not p.requires_grad}
    base = copy.deepcopy(wrapped[0]).to("meta")
    per_seed_grad = vmap(grad(lambda t, f, b, x: functional_call(base, ({**t, **f}, b), (x,))))
    folded = torch.stack(data)
    stacked = StackedValueDecompositionLoss(losses)

    def stacked_step():
        for loss in losses:
            loss.zero_grad(set_to_none=True)
        stacked(data)["loss"].sum().backward()

    return {"plain": plain, "vmap": lambda: per_seed_grad(trainable, frozen, buffers, folded), "stacked": stacked_step}


def _cell_loop(w_ih, b_ih, w_hh, b_hh, x):
    gi = (x @ w_ih.t() + b_ih).unbind(0)
    h, outs = x.new_zeros(x.shape[1], w_hh.shape[1]), []
    for g in gi:
        i_r, i_z, i_n = g.chunk(3, -1)
        h_r, h_z, h_n = (h @ w_hh.t() + b_hh).chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = n + z * (h - n)
        outs.append(h)
    return torch.stack(outs).sum()


def gru_approaches(k: int, args) -> dict:
    t, rows, hd = args.seq_len + 1, args.batch * BALANCE.n_agents, MODEL.hidden_dim
    x = torch.randn(k, t, rows, hd)
    weights = [torch.randn(k, 3 * hd, hd) * 0.1, torch.zeros(k, 3 * hd), torch.randn(k, 3 * hd, hd) * 0.1,
               torch.zeros(k, 3 * hd)]
    grus = [torch.nn.GRU(hd, hd) for _ in range(k)]
    mine = [weights[0].transpose(1, 2), weights[1][:, None], weights[2].transpose(1, 2), weights[3][:, None]]
    mine = [w.clone().requires_grad_() for w in mine]
    per_seed_grad = vmap(grad(_cell_loop, argnums=(0, 1, 2, 3)))

    def plain():
        for gru, xs in zip(grus, x):
            gru.zero_grad(set_to_none=True)
            gru(xs)[0].sum().backward()

    return {"plain": plain, "vmap": lambda: per_seed_grad(*weights, x),
            "stacked": lambda: stacked_gru(x, torch.zeros(k, rows, hd), *mine).sum().backward()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--gru", action="store_true", help="time the GRU alone instead of the whole loss")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    warnings.simplefilter("error")  # a vmap fallback (a per-seed loop behind vmap's back) would raise
    torch._C._functorch._set_vmap_fallback_warning_enabled(True)
    rows = []
    for k in args.seeds:
        fns = (gru_approaches if args.gru else loss_approaches)(k, args)
        for fn in fns.values():
            fn()
        times = {name: [] for name in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                start = time.process_time()
                fn()
                times[name].append(time.process_time() - start)
        plain = statistics.median(times["plain"])
        for name, samples in times.items():
            per_seed = statistics.median(samples) / k
            rows.append({"part": "gru" if args.gru else "loss", "approach": name, "num_seeds": k,
                         "ms_per_seed_cpu": round(per_seed * 1e3, 1), "speedup_vs_plain": round(plain / k / per_seed, 2)})
            print(f"K={k} {name:8s} {per_seed * 1e3:7.1f} ms per seed (CPU), {plain / k / per_seed:.2f}x plain")
    write_csv(rows, args.results / f"seeds_feasibility{'_gru' if args.gru else ''}.csv")


if __name__ == "__main__":
    main()
