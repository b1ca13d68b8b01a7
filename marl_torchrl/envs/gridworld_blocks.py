"""One GridWorld25 env of K x E envs whose block ``k`` resets exactly as seed ``k``'s own E envs would.

GridWorld25 draws only at resets, from its own ``torch.Generator`` (``_gen``, seeded by ``set_seed``): a
reset of ``n`` envs is one ``torch.rand(n, size * size)`` from it, in env index order, and steps draw
nothing. :class:`GridSeedBlocks` makes block ``k`` (envs ``k * E ... (k + 1) * E - 1``) draw its resets
from seed ``k``'s own E-env GridWorld25 (its *source*, which is never stepped or reset itself): on every
reset, the first and every later auto-reset, block ``k``'s resetting envs are drawn with one
``torch.rand(n_k, size * size)`` from the source's own generator, the call seed
``k``'s env alone makes when the same ``n_k`` of its envs reset; a block with no env to reset draws
nothing, as seed ``k``'s env is then not reset at all. So block ``k`` takes the same starts as seed ``k``
alone, in the same order, whatever the other blocks do (``tests/test_seeds_collection_blocks.py``).
GridWorld25 draws from no other generator, so the caller's ``rng(k)`` (seed ``k``'s process-wide random
stream) need not be switched in around a block's reset.

>>> import contextlib, torch
>>> from marl_torchrl.envs.gridworld import GridWorld25
>>> def grid(n, seed):
...     env = GridWorld25(num_envs=n, size=5, n_agents=2, n_food=1)
...     env.set_seed(seed)
...     return env
>>> big, alone = GridWorld25(num_envs=4, size=5, n_agents=2, n_food=1), grid(2, 1)
>>> big.reset_blocks_from([grid(2, 0), grid(2, 1)], rng=lambda k: contextlib.nullcontext())
>>> td = big.reset()
>>> td["state"][2:].equal(alone.reset()["state"])                  # block 1 starts as seed 1's env
True
>>> td["_reset"] = torch.tensor([[False], [True], [True], [False]])
>>> mine = td[2:].clone()
>>> big.reset(td)["state"][2:].equal(alone.reset(mine)["state"])   # and so do its later resets
True
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Sequence

import torch

from marl_torchrl.envs.seed_blocks import block_size

__all__ = ["GridSeedBlocks"]


class GridSeedBlocks:
    """Reset draws of a GridWorld25 of ``K * E`` envs, block ``k``'s from ``sources[k]``'s generator (``rng``
    is kept, unused: see the module docstring, which has the example)."""

    def __init__(self, env, sources: Sequence, rng: Callable[[int], AbstractContextManager]):
        self.env, self.sources, self.rng = env, list(sources), rng
        self.block = block_size(env, self.sources)
        shape = lambda e: (e.size, e.n_agents, e.n_food)  # noqa: E731
        if any(shape(s) != shape(env) for s in self.sources):
            raise ValueError("every seed's GridWorld25 must have the big env's size, agents and food")

    def draw(self, envs: torch.Tensor) -> torch.Tensor:
        """``[len(envs), A + F, 2]`` start cells for ``envs`` (ascending env indices, as a reset lists
        them), each block's rows drawn from its source's generator as that source's own reset draws them."""
        counts = torch.bincount(envs // self.block, minlength=len(self.sources)).tolist()
        cells = []
        for k, n in enumerate(counts):
            if n:
                cells.append(self.env._draw(n, self.sources[k]._gen))
        return torch.cat(cells)
