"""K seeds' envs as one env of K x E: :func:`seed_block_env`, where the env family can.

A family can when its base env offers ``supports_seed_blocks`` and ``reset_blocks_from(sources, rng)``
(VMAS: :class:`~marl_torchrl.envs.vmas_blocks.VmasSeedBlocks`): block ``k`` of the big env resets as seed
``k``'s own env would, drawing inside ``rng(k)``. Other families return None, and their seeds keep their
own envs.

>>> import contextlib
>>> from marl_torchrl.envs import make_env
>>> cfg = {"family": "vmas", "task": "balance", "max_steps": 5, "num_envs": 2}
>>> env = seed_block_env(cfg, [make_env(cfg, seed=s) for s in (0, 1)], lambda k: contextlib.nullcontext())
>>> env.batch_size
torch.Size([4])
>>> matrix = {"family": "matrix", "task": "two_step"}
>>> seed_block_env(matrix, [make_env(matrix, seed=s) for s in (0, 1)], lambda k: contextlib.nullcontext()) is None
True
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Sequence

from torchrl.envs import EnvBase, TransformedEnv

from marl_torchrl.envs.face import make_env

__all__ = ["seed_block_env"]


def _base(env: EnvBase) -> EnvBase:
    return env.base_env if isinstance(env, TransformedEnv) else env


def seed_block_env(cfg, envs: Sequence[EnvBase], rng: Callable[[int], AbstractContextManager], *, device="cpu",
                   last_action: bool = False, transforms: Sequence = ()) -> TransformedEnv | None:
    """One env of ``len(envs) x E`` envs built from ``cfg`` (plus ``last_action`` and clones of
    ``transforms``, as each seed's env has them) whose block ``k`` resets as ``envs[k]`` (E envs, never
    stepped) would, inside ``rng(k)``; None when the family cannot batch seeds this way."""
    bases = [_base(e) for e in envs]
    if not all(getattr(b, "supports_seed_blocks", False) for b in bases):
        return None
    env = make_env(cfg, num_envs=len(bases) * int(bases[0].batch_size.numel()), device=device,
                   last_action=last_action)
    for t in transforms:
        env.append_transform(t.clone())
    _base(env).reset_blocks_from(bases, rng)
    return env
