"""One VMAS env of K x E envs whose block ``k`` resets exactly as seed ``k``'s own E envs would.

K seeds in one process (``num_seeds=K``) can step one VMAS env of K x E envs instead of K envs of E: VMAS
is vectorised, so one step of K x E envs costs far less than K steps of E. Stepping is per env (balance and
the scenarios we ship draw nothing in a step), but resets draw, and VMAS keeps one random state for all its
envs: a vectorised reset of K x E envs would draw K x E starts from one stream. :class:`VmasSeedBlocks`
instead resets block ``k`` (envs ``k * E ... (k + 1) * E - 1``) from seed ``k``'s own E-env VMAS env (its
*source*, which is never stepped): the draws are made by the source's own vectorised reset, inside
``rng(k)`` (the caller switches in seed ``k``'s random stream there), and the fresh rows are copied into the
block (:class:`~marl_torchrl.envs.vmas_reset.ResetPool` ``take(into=, offset=)``). Per block it follows
:class:`~marl_torchrl.envs.vmas_wrapper.FastVmasWrapper`'s own rules: when every env of the block resets
(the first reset, or all its episodes ending on one step) it is a full reset of the source, drawn now and
leaving the block's pool as it is; otherwise the reset envs take the next rows of the block's pool, refilled
by a vectorised reset of the source when too few are left. Before each such reset (after the first) the
source takes the block's current state, so a reset that reads the state it resets from (VMAS's ``info``
keeps the last reward terms) sees what seed ``k``'s env alone has. So block ``k`` draws exactly what seed
``k`` alone draws, in the same order, and returns the same, whatever the other blocks do
(``tests/test_seeds_collection.py``).

>>> import contextlib, vmas
>>> from marl_torchrl.envs.vmas import set_shared_random_state, shared_random_state
>>> from marl_torchrl.envs.vmas_wrapper import FastVmasWrapper
>>> def envs(n):
...     return FastVmasWrapper(vmas.make_env("balance", num_envs=n, device="cpu", seed=0), categorical_actions=True)
>>> sources, big = [envs(2), envs(2)], envs(4)
>>> big.reset_blocks_from(sources, rng=lambda k: contextlib.nullcontext())
>>> saved = shared_random_state()
>>> obs = big.reset()["agents", "observation"]
>>> set_shared_random_state(saved)                   # seed 0's env alone, from the same random state
>>> obs.shape, obs[:2].equal(sources[0].reset()["agents", "observation"])
(torch.Size([4, 3, 16]), True)
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Sequence

import torch
from tensordict import TensorDictBase

from marl_torchrl.envs.vmas_reset import ResetPool, copy_rows

__all__ = ["VmasSeedBlocks"]


class VmasSeedBlocks:
    """Resets of a ``FastVmasWrapper`` of ``K * E`` envs, block ``k`` from ``sources[k]`` (E envs), its
    draws inside ``rng(k)``; see the module docstring (which has the example)."""

    def __init__(self, env, sources: Sequence, rng: Callable[[int], AbstractContextManager]):
        self.env, self.sources, self.rng = env, list(sources), rng
        self.block = int(self.sources[0].batch_size.numel())
        if any(int(s.batch_size.numel()) != self.block for s in self.sources):
            raise ValueError("every seed's env must have the same number of envs")
        if int(env.batch_size.numel()) != self.block * len(self.sources):
            raise ValueError(f"an env of {env.batch_size.numel()} envs does not hold {len(self.sources)} blocks "
                             f"of {self.block}")
        self.pools = [ResetPool(capture=s._read) for s in self.sources]
        self.started = [False] * len(self.sources)  # whether block k has been reset (its rows are seed k's)

    def reset(self, which: torch.Tensor | None) -> TensorDictBase:
        """Reset the envs where ``which`` (``[K * E]`` bool; None: all) is True; returns the reset output
        of every env (rows of envs that were not reset are placeholders, which torchrl discards)."""
        e, outs = self.block, []
        for k, (source, pool) in enumerate(zip(self.sources, self.pools)):
            mine = torch.ones(e, dtype=torch.bool) if which is None else which[k * e:(k + 1) * e]
            if not bool(mine.any()):
                outs.append(None)
                continue
            if bool(mine.all()):  # the source's own full reset: drawn now, its pool left as it is
                pool = ResetPool(capture=source._read)
            if len(mine.nonzero()) > pool.left:
                if self.started[k]:  # the source takes the block's state, as seed k's env has it alone
                    copy_rows(self.env._env, source._env, k * e)
                with self.rng(k):
                    pool.refill(source._env)
            self.started[k] = True
            envs, rows = pool.take(source._env, mine.to(self.env._env.device), into=self.env._env, offset=k * e)
            pick = torch.zeros(e, dtype=torch.long, device=rows.device).index_put((envs,), rows)
            outs.append(pool.fresh[pick])
        filler = next(o for o in outs if o is not None)
        return torch.cat([filler if o is None else o for o in outs])
