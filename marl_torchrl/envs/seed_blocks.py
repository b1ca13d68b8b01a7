"""K seeds' envs as one env of K x E: :func:`seed_block_env`, where the env family can.

A family can when its base env offers ``supports_seed_blocks`` and ``reset_blocks_from(sources, rng)``:
block ``k`` of the big env resets (first reset and every auto-reset) and steps as seed ``k``'s own env
(``sources[k]``, E envs, never stepped itself) would, drawing inside ``rng(k)``. Families that can:
VMAS (:class:`~marl_torchrl.envs.vmas_blocks.VmasSeedBlocks`: block ``k`` reset from its source's own
vectorised resets), GridWorld25 (:class:`~marl_torchrl.envs.gridworld_blocks.GridSeedBlocks`: block
``k``'s resets drawn from its source's generator), SMAX (:class:`~marl_torchrl.envs.smax_blocks.SmaxSeedBlocks`:
one jax key per block, split per block as its source splits its own), the matrix games (which draw
nothing) and LBF and PettingZoo (:class:`~marl_torchrl.envs.copies.LoopedCopies`: block ``k`` takes over
its source's Python env copies, with their own generators and pending seed). Envs whose base offers no
seed blocks (PettingZoo with ``parallel=process``: the copies live in worker processes) return None, and
their seeds keep their own envs.

>>> import contextlib
>>> from marl_torchrl.envs import make_env
>>> cfg = {"family": "vmas", "task": "balance", "max_steps": 5, "num_envs": 2}
>>> env = seed_block_env(cfg, [make_env(cfg, seed=s) for s in (0, 1)], lambda k: contextlib.nullcontext())
>>> env.batch_size
torch.Size([4])
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Sequence

from torchrl.envs import EnvBase, TransformedEnv
from torchrl.envs.batched_envs import BatchedEnvBase

from marl_torchrl.envs.face import make_env

__all__ = ["block_size", "seed_block_env"]


def _base(env: EnvBase) -> EnvBase:
    return env.base_env if isinstance(env, TransformedEnv) else env


def block_size(env: EnvBase, sources: Sequence[EnvBase]) -> int:
    """E, the envs of each of ``sources`` (K seeds' envs), checked to be equal and to fill ``env`` (K x E).

    >>> import torch
    >>> from marl_torchrl.envs.matrix import OneStepGame
    >>> block_size(OneStepGame(torch.eye(2), num_envs=6), [OneStepGame(torch.eye(2), num_envs=3)] * 2)
    3
    """
    block = int(sources[0].batch_size.numel())
    if any(int(s.batch_size.numel()) != block for s in sources):
        raise ValueError("every seed's env must have the same number of envs")
    if int(env.batch_size.numel()) != block * len(sources):
        raise ValueError(f"an env of {env.batch_size.numel()} envs does not hold {len(sources)} blocks of {block}")
    return block


def seed_block_env(cfg, envs: Sequence[EnvBase], rng: Callable[[int], AbstractContextManager], *, device="cpu",
                   last_action: bool = False, transforms: Sequence = ()) -> TransformedEnv | None:
    """One env of ``len(envs) x E`` envs built from ``cfg`` (plus ``last_action`` and clones of
    ``transforms``, as each seed's env has them) whose block ``k`` resets as ``envs[k]`` (E envs, never
    stepped) would, inside ``rng(k)``; None when the family cannot batch seeds this way, or when its envs
    run in torchrl's batched workers (e.g. PettingZoo's ``env.parallel=process``: the copies live in other
    processes, so no block can take them over).

    >>> import torch
    >>> from torchrl.envs import SerialEnv
    >>> from marl_torchrl.envs.matrix import OneStepGame
    >>> workers = [SerialEnv(1, lambda: OneStepGame(torch.eye(2), num_envs=2)) for _ in range(2)]
    >>> seed_block_env({"family": "matrix", "task": "one_step"}, workers, None) is None
    True
    """
    bases = [_base(e) for e in envs]
    if any(isinstance(b, BatchedEnvBase) for b in bases):  # its attributes live in its workers
        return None
    if not all(getattr(b, "supports_seed_blocks", False) for b in bases):
        return None
    env = make_env(cfg, num_envs=len(bases) * int(bases[0].batch_size.numel()), device=device,
                   last_action=last_action)
    for t in transforms:
        env.append_transform(t.clone())
    _base(env).reset_blocks_from(bases, rng)
    return env
